"""The regression report, from asv's own two ways of finding a slowdown.

No statistics of our own.

1. ``asv compare`` (``_is_result_better``): each commit benchmarked tonight
   against the nearest first-parent ancestor with a result in the same
   environment. Slower means slower by more than ``factor`` AND different by
   asv's test (Mann-Whitney U on the recorded samples, p < 0.002; else
   non-overlapping 99% confidence intervals). This catches a slowdown the
   night it lands.
2. ``asv publish`` step detection: it fits a piecewise-constant curve to
each benchmark's history (``asv.step_detect``) and writes to ``regressions.json``
every upward step larger than both the fit's error and the relative threshold
(``regressions_thresholds`` in asv.conf.json, 5% when unset). Each entry is
``[name, graph_path, graph_params, param_index, last_value, best_value, jumps]``
with jumps ``[rev_before | None, rev_after, value_before, value_after]`` in
revision numbers that ``index.json`` maps to commit hashes. It needs a few
points after a step, so it confirms a regression over the following nights
and keeps it listed (site page, Atom feed) until it is fixed.

A regression whose first slow commit was benchmarked tonight is "new".
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import asdict, dataclass

from asv import util as asv_util
from asv.commands.compare import _is_result_better
from asv.results import Results


@dataclass(frozen=True)
class Regression:
    """One upward step in one benchmark's history."""

    benchmark: str  # asv name, with parameter values in parentheses if any
    graph: dict  # the graph's distinguishing params (machine, python, branch...)
    commit_before: str | None  # last fast commit; None when the step is one commit
    commit_after: str  # first slow commit
    value_before: float
    value_after: float
    unit: str
    new: bool  # commit_after was benchmarked by this run
    found_by: str  # "asv compare" or "asv step detection"

    @property
    def ratio(self) -> float | None:
        """after / before; None where that means nothing (a value at or below 0)."""
        if self.value_before <= 0 or self.value_after < 0:
            return None
        return self.value_after / self.value_before

    def describe(self) -> str:
        where = (
            f"in commit {self.commit_after[:8]}"
            if self.commit_before is None
            else f"in commits {self.commit_before[:8]}..{self.commit_after[:8]}"
        )
        graph = ", ".join(f"{k}={self.graph[k]}" for k in _SHOWN_PARAMS if self.graph.get(k))
        before = _human(self.value_before, self.unit)
        after = _human(self.value_after, self.unit)
        if self.ratio is None:
            change = f"up by {_human(self.value_after - self.value_before, self.unit)}"
        else:
            change = f"{self.ratio:.2f}x slower"
        return (f"{self.benchmark} [{graph}]: {change} ({before} -> {after}) {where} "
                f"({self.found_by})")


def _human(value: float, unit: str) -> str:
    if unit in ("seconds", "bytes"):
        return asv_util.human_value(value, unit)
    return f"{value:.4g}" + (f" {unit}" if unit and unit != "unit" else "")


# Graph params worth a reader's attention; the others (cpu, ram, os...) are
# the same on every graph of one machine.
_SHOWN_PARAMS = ("machine", "python", "branch")


def read_regressions(site_dir: str, new_commits: set[str]) -> list[Regression]:
    """Every regression asv found in the published site in ``site_dir``."""
    with open(os.path.join(site_dir, "regressions.json"), encoding="utf-8") as f:
        entries = json.load(f)["regressions"]
    with open(os.path.join(site_dir, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    rev_to_hash = {int(rev): h for rev, h in index["revision_to_hash"].items()}
    found = []
    for name, graph_path, _params, _j, _last, _best, jumps in entries:
        graph = _graph_params(graph_path)
        base_name = name.split("(", 1)[0]
        unit = index["benchmarks"].get(base_name, {}).get("unit", "")
        for rev_before, rev_after, value_before, value_after in jumps:
            after = rev_to_hash[rev_after]
            found.append(
                Regression(
                    benchmark=name,
                    graph=graph,
                    commit_before=None if rev_before is None else rev_to_hash[rev_before],
                    commit_after=after,
                    value_before=value_before,
                    value_after=value_after,
                    unit=unit,
                    new=after in new_commits,
                    found_by="asv step detection",
                )
            )
    return found


def compare_to_baseline(new: Results, base: Results, graph: dict, units: dict,
                        factor: float) -> list[Regression]:
    """The benchmarks ``asv compare --factor`` marks worse from ``base`` to ``new``."""
    found = []
    for key in sorted(new.get_all_result_keys()):
        if key not in base.get_all_result_keys():
            continue
        if new.benchmark_version.get(key) != base.benchmark_version.get(key):
            continue  # the benchmark itself changed: not comparable (asv marks 'x')
        params = new.get_result_params(key)
        names = ([key] if not params else
                 [f"{key}({', '.join(combo)})" for combo in itertools.product(*params)])
        columns = [
            r.get_result_value(key, params) for r in (base, new)
        ] + [r.get_result_stats(key, params) for r in (base, new)] + [
            r.get_result_samples(key, params) for r in (base, new)
        ]
        for name, v_base, v_new, st_base, st_new, sa_base, sa_new in zip(names, *columns):
            if _missing(v_base) or _missing(v_new):
                continue  # failures are reported as such, not as slowdowns
            if _is_result_better(v_base, v_new, (st_base, sa_base), (st_new, sa_new), factor):
                found.append(Regression(
                    benchmark=name, graph=graph, commit_before=base.commit_hash,
                    commit_after=new.commit_hash, value_before=v_base, value_after=v_new,
                    unit=units.get(key, ""), new=True,
                    found_by=f"asv compare --factor {factor:g}",
                ))
    return found


def merge(compared: list[Regression], stepped: list[Regression]) -> list[Regression]:
    """One row per (benchmark, graph, first slow commit), new ones first."""
    rows: dict[tuple, Regression] = {}
    for r in compared + stepped:
        key = (r.benchmark, r.graph.get("machine"), r.graph.get("python"), r.commit_after)
        if key in rows:
            old = rows[key]
            both = f"{old.found_by} + {r.found_by.replace('asv ', '')}"
            rows[key] = Regression(**dict(asdict(old), new=old.new or r.new, found_by=both))
        else:
            rows[key] = r
    return sorted(rows.values(), key=lambda r: (not r.new, -(r.ratio or 0), r.benchmark))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _graph_params(graph_path: str) -> dict:
    """``graphs/branch-main/machine-m/python-3.11/name.json`` -> its params."""
    parts = graph_path.split("/")[1:-1]
    return dict(part.split("-", 1) for part in parts if "-" in part)


def format_report(regressions: list[Regression], header: str) -> str:
    """The text of regressions.txt."""
    lines = [header, ""]
    new = [r for r in regressions if r.new]
    old = [r for r in regressions if not r.new]
    if not regressions:
        lines.append("No regressions.")
    if new:
        lines.append(f"New regressions ({len(new)}), first slow commit benchmarked by this run:")
        lines += [f"  {r.describe()}" for r in new]
    if old:
        lines.append(f"Still open from earlier runs ({len(old)}):")
        lines += [f"  {r.describe()}" for r in old]
    lines += ["", "Details: index.html#regressions on this site; Atom feed: regressions.xml."]
    return "\n".join(lines) + "\n"


def write_report(site_dir: str, regressions: list[Regression], header: str) -> str:
    """Write regressions.txt and nightly-regressions.json beside index.html; return the text."""
    text = format_report(regressions, header)
    with open(os.path.join(site_dir, "regressions.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(site_dir, "nightly-regressions.json"), "w", encoding="utf-8") as f:
        rows = [dict(asdict(r), ratio=r.ratio) for r in regressions]
        json.dump({"regressions": rows}, f, indent=2)
    return text
