"""Candidate regressions, from asv's own two ways of finding a slowdown, and the report.

1. ``asv compare`` (``_is_result_better``): each commit benchmarked tonight
   against the nearest first-parent ancestor with a result in the same
   environment. Slower means slower by more than the factor AND different by
   asv's test (Mann-Whitney U on the recorded samples, p < 0.002; else
   non-overlapping 99% confidence intervals). The factor is ``--compare-factor``,
   or ``1 + threshold`` where the benchmark's own threshold in
   ``regressions_thresholds`` (its noise band) is larger.
2. ``asv publish`` step detection: it fits a piecewise-constant curve to
   each benchmark's history (``asv.step_detect``) and writes to
   ``regressions.json`` every upward step larger than both the fit's error
   and the relative threshold (``regressions_thresholds``, 5% when unset).
   Each entry is ``[name, graph_path, graph_params, param_index, last_value,
   best_value, jumps]`` with jumps ``[rev_before | None, rev_after,
   value_before, value_after]`` in revision numbers that ``index.json`` maps
   to commit hashes.

Both only nominate. A timed candidate is reported once measured again the
same night, interleaved with its baseline (confirm.py). An instruction count
(unit ``instructions``, benchmarks/bench_cost.py) does not move with load:
a change above its threshold (1%) is reported as it is.

A regression whose first slow commit was benchmarked tonight is "new".
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from dataclasses import asdict, dataclass, replace

from asv import util as asv_util
from asv.commands.compare import _is_result_better
from asv.results import Results

COUNTED_UNIT = "instructions"  # deterministic: counted by Valgrind, not timed
DEFAULT_THRESHOLD = 0.05  # asv's, for a benchmark no regressions_thresholds entry matches

# What became of a candidate.
CANDIDATE = "candidate"  # found, not judged yet
CONFIRMED = "confirmed"  # measured again, interleaved: slower by the factor, significantly
NOISE = "noise"  # measured again, interleaved: not slower by the factor, or not significantly
UNMEASURED = "unmeasured"  # not measured again tonight (budget, or the run failed)
COUNTED = "counted"  # an instruction count: no rerun needed
REPORTED = (CONFIRMED, COUNTED)


@dataclass(frozen=True)
class Regression:
    """One upward step in one benchmark's history, and what became of it."""

    benchmark: str  # asv name, with parameter values in parentheses if any
    graph: dict  # the graph's distinguishing params (machine, python, branch...)
    commit_before: str | None  # last fast commit; None when the step is one commit
    commit_after: str  # first slow commit
    value_before: float
    value_after: float
    unit: str
    new: bool  # commit_after was benchmarked by this run
    found_by: str  # "asv compare" or "asv step detection"
    factor: float = 1.0  # how much slower it had to be to be found (and confirmed)
    verdict: str = CANDIDATE
    interleaved: dict | None = None  # the confirmation's figures (confirm.py)
    note: str = ""  # why unmeasured; when an earlier night judged it

    @property
    def ratio(self) -> float | None:
        """after / before; None where that means nothing (a value at or below 0)."""
        if self.value_before <= 0 or self.value_after < 0:
            return None
        return self.value_after / self.value_before

    @property
    def alarm(self) -> bool:
        """Reported as a new regression tonight: first slow commit new, and confirmed or counted."""
        return self.new and self.verdict in REPORTED

    @property
    def counted(self) -> bool:
        return self.unit == COUNTED_UNIT

    @property
    def key(self) -> str:
        """The same regression on any night: benchmark, machine, python, first slow commit."""
        return "|".join((self.benchmark, str(self.graph.get("machine")),
                         str(self.graph.get("python")), self.commit_after))

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
        elif self.counted:
            change = f"{self.ratio:.3f}x the instructions"
        else:
            change = f"{self.ratio:.2f}x slower"
        return (f"{self.benchmark} [{graph}]: {change} ({before} -> {after}) {where} "
                f"({self.found_by})")

    def evidence(self) -> str:
        """The line under ``describe``: how the verdict was reached."""
        if self.verdict == COUNTED:
            return "instruction count: the same on every run of the same code, no rerun needed"
        if self.interleaved is None:
            return self.note
        i = self.interleaved
        text = (f"interleaved with {i['baseline'][:8]}, {i['rounds']} rounds, "
                f"{len(i['base_samples'])}+{len(i['new_samples'])} samples: "
                f"{_human(i['base_median'], self.unit)} -> {_human(i['new_median'], self.unit)}, "
                f"{i['ratio']:.2f}x (needs > {self.factor:.2f}x), p={i['p_value']:.2g} "
                f"(needs < {i['p_threshold']:g})")
        return text + (f"; {self.note}" if self.note else "")


def _human(value: float, unit: str) -> str:
    if unit in ("seconds", "bytes"):
        return asv_util.human_value(value, unit)
    if unit == COUNTED_UNIT:
        return f"{value:,.0f}"
    return f"{value:.4g}" + (f" {unit}" if unit and unit != "unit" else "")


# Graph params worth a reader's attention; the others (cpu, ram, os...) are
# the same on every graph of one machine.
_SHOWN_PARAMS = ("machine", "python", "branch")


def threshold_for(name: str, branch: str | None, thresholds: dict | None) -> float:
    """A benchmark's relative threshold, as ``asv publish`` takes it from ``regressions_thresholds``.

    The largest value whose regex matches ``name@branch``; 5% when none does.
    """
    suffix = f"@{branch}" if branch else ""
    found = [float(t) for regex, t in (thresholds or {}).items() if re.match(regex, name + suffix)]
    return max(found) if found else DEFAULT_THRESHOLD


def thresholds_of(raw_config: dict, override: float | None) -> dict:
    """``regressions_thresholds`` as ``asv publish`` will use them (``--regression-threshold`` wins)."""
    if override is not None:
        return {".*": override}
    return dict(raw_config.get("regressions_thresholds") or {})


def _graph_points(site_dir: str, graph_path: str) -> dict[int, object]:
    """A published graph's value per revision (a list for a parameterised one); {} if unreadable."""
    try:
        with open(os.path.join(site_dir, graph_path), encoding="utf-8") as f:
            points = json.load(f)
        return {int(rev): value for rev, value in points}
    except (OSError, ValueError, TypeError):
        return {}


def _value_at(points: dict[int, object], rev: int, j: int | None) -> float | None:
    """The value at ``rev`` (entry ``j`` of a parameterised graph), if it was measured."""
    value = points.get(rev)
    if j is not None:
        value = value[j] if isinstance(value, list) and j < len(value) else None
    if isinstance(value, (int, float)) and not math.isnan(value):
        return float(value)
    return None


def read_regressions(site_dir: str, new_commits: set[str], thresholds: dict | None = None
                     ) -> list[Regression]:
    """Every regression asv's step detection found in the published site in ``site_dir``."""
    with open(os.path.join(site_dir, "regressions.json"), encoding="utf-8") as f:
        entries = json.load(f)["regressions"]
    with open(os.path.join(site_dir, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    rev_to_hash = {int(rev): h for rev, h in index["revision_to_hash"].items()}
    found = []
    graphs: dict[str, dict[int, object]] = {}  # one file serves every parameter of a benchmark
    for name, graph_path, _params, j, _last, _best, jumps in entries:
        graph = _graph_params(graph_path)
        if graph_path not in graphs:
            graphs[graph_path] = _graph_points(site_dir, graph_path)
        base_name = name.split("(", 1)[0]
        unit = index["benchmarks"].get(base_name, {}).get("unit", "")
        factor = 1 + threshold_for(name, graph.get("branch"), thresholds)
        for rev_before, rev_after, value_before, value_after in jumps:
            after = rev_to_hash[rev_after]
            measured = _value_at(graphs[graph_path], rev_after, j)
            found.append(
                Regression(
                    benchmark=name,
                    graph=graph,
                    commit_before=None if rev_before is None else rev_to_hash[rev_before],
                    commit_after=after,
                    value_before=value_before,
                    # asv gives the best value after the step, not the commit's own:
                    # the first slow commit's value, as the compare check reports it.
                    value_after=value_after if measured is None else measured,
                    unit=unit,
                    new=after in new_commits,
                    found_by="asv step detection",
                    factor=factor,
                    verdict=COUNTED if unit == COUNTED_UNIT else CANDIDATE,
                )
            )
    return found


def compare_to_baseline(new: Results, base: Results, graph: dict, units: dict,
                        factor: float, thresholds: dict | None = None) -> list[Regression]:
    """The benchmarks ``asv compare`` marks worse from ``base`` to ``new``.

    A benchmark's factor is ``max(factor, 1 + its threshold)``: a value never
    alarms inside its own noise band. An instruction count is worse when it
    grew by more than its threshold: it is exact, there is nothing to test.
    """
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
        unit = units.get(key, "")
        for name, v_base, v_new, st_base, st_new, sa_base, sa_new in zip(names, *columns):
            if _missing(v_base) or _missing(v_new):
                continue  # failures are reported as such, not as slowdowns
            threshold = threshold_for(name, graph.get("branch"), thresholds)
            if unit == COUNTED_UNIT:
                worse = v_base > 0 and v_new > v_base * (1 + threshold)
                this_factor, found_by = 1 + threshold, f"instruction count up > {threshold:.0%}"
            else:
                this_factor = max(factor, 1 + threshold)
                worse = _is_result_better(v_base, v_new, (st_base, sa_base), (st_new, sa_new),
                                          this_factor)
                found_by = f"asv compare --factor {this_factor:g}"
            if worse:
                found.append(Regression(
                    benchmark=name, graph=graph, commit_before=base.commit_hash,
                    commit_after=new.commit_hash, value_before=v_base, value_after=v_new,
                    unit=unit, new=True, found_by=found_by, factor=this_factor,
                    verdict=COUNTED if unit == COUNTED_UNIT else CANDIDATE,
                ))
    return found


def merge(compared: list[Regression], stepped: list[Regression]) -> list[Regression]:
    """One row per (benchmark, graph, first slow commit), new ones first.

    A row both checks found keeps the compare check's baseline (the commit
    before, measured) and the smaller factor.
    """
    rows: dict[str, Regression] = {}
    for r in compared + stepped:
        if r.key in rows:
            old = rows[r.key]
            both = f"{old.found_by} + {r.found_by.replace('asv ', '')}"
            rows[r.key] = replace(old, new=old.new or r.new, found_by=both,
                                  factor=min(old.factor, r.factor))
        else:
            rows[r.key] = r
    return sorted(rows.values(), key=lambda r: (not r.new, -(r.ratio or 0), r.benchmark))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _graph_params(graph_path: str) -> dict:
    """``graphs/branch-main/machine-m/python-3.11/name.json`` -> its params."""
    parts = graph_path.split("/")[1:-1]
    return dict(part.split("-", 1) for part in parts if "-" in part)


def format_report(regressions: list[Regression], header: str) -> str:
    """The text of regressions.txt: what is reported, then what was not and why."""
    lines = [header, ""]
    reported = [r for r in regressions if r.verdict in REPORTED]
    new = [r for r in reported if r.new]
    old = [r for r in reported if not r.new]
    noise = [r for r in regressions if r.verdict == NOISE]
    unmeasured = [r for r in regressions if r.verdict in (UNMEASURED, CANDIDATE)]
    if not reported:
        lines.append("No regressions.")
    sections = (
        (new, f"New regressions ({len(new)}), first slow commit benchmarked by this run:"),
        (old, f"Still open from earlier runs ({len(old)}):"),
        (noise, f"Not confirmed (noise) ({len(noise)}): measured again, interleaved with the "
                "commit before, not slower by the factor or not significantly; or inside the "
                "benchmark's noise band on this machine:"),
        (unmeasured, f"Not measured again ({len(unmeasured)}), so not reported; "
                     "the next run tries again:"),
    )
    for rows, title in sections:
        if rows:
            lines.append(title)
            for r in rows:
                lines.append(f"  {r.describe()}")
                if r.evidence():
                    lines.append(f"      {r.evidence()}")
    lines += ["", "Details: index.html#regressions on this site; Atom feed: regressions.xml."]
    return "\n".join(lines) + "\n"


def write_report(site_dir: str, regressions: list[Regression], header: str) -> str:
    """Write regressions.txt and nightly-regressions.json beside index.html; return the text."""
    text = format_report(regressions, header)
    with open(os.path.join(site_dir, "regressions.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(site_dir, "nightly-regressions.json"), "w", encoding="utf-8") as f:
        rows = [dict(asdict(r), ratio=r.ratio, reported=r.verdict in REPORTED)
                for r in regressions]
        json.dump({"regressions": [r for r in rows if r["reported"]],
                   "not_reported": [r for r in rows if not r["reported"]]}, f, indent=2)
    return text
