"""The night's report: compare fresh results, list regressions, write the summary.

"Fresh" results are this run's and those whose report an earlier run never
published: a run killed between its last store commit and the switch of the
site would otherwise lose that night's compare check for good, since the next
run has nothing new to benchmark. They wait in ``STATE/unreported.json``
(store-relative paths) until a report including them is deployed.

``nightly.json`` and the report go on a public site: no local paths in them.
"""

from __future__ import annotations

import json
import logging
import os
import re

from asv.results import Results

from _nightly import confirm, environment
from _nightly.git import ancestors
from _nightly.regression import (compare_to_baseline, merge, read_regressions, thresholds_of,
                                 write_report)

log = logging.getLogger("nightly")


class Unreported:
    """Results committed to the store whose report has not been published yet."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, "unreported.json")
        try:
            with open(self.path, encoding="utf-8") as f:
                self.rels: list[str] = list(json.load(f))
        except (OSError, ValueError):
            self.rels = []

    def add(self, rels: list[str]) -> None:
        """Remember store paths (``machine/file.json``) before they enter the store."""
        self._save(self.rels + rels)

    def discard(self, rels: list[str]) -> None:
        self._save([rel for rel in self.rels if rel not in rels])

    def _save(self, rels: list[str]) -> None:
        self.rels = sorted(set(rels))
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.rels, f)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.rels = []
        if os.path.exists(self.path):
            os.remove(self.path)


def write(out, opts, bench_repo, store, stored, unreported, state, job: confirm.Job):
    """Compare tonight's results (and any an interrupted run left unreported), confirm; report."""
    tonight = {r.path for r in state.benchmarked}
    earlier = [r for r in stored if os.path.relpath(r.path, store.path) in unreported.rels
               and r.path not in tonight]
    if earlier:
        log.warning("the report of %d result(s) was interrupted in an earlier run: "
                    "comparing them now", len(earlier))
    fresh = state.benchmarked + earlier
    new_commits = {r.commit_hash for r in fresh}
    thresholds = thresholds_of(job.raw, opts.regression_threshold)
    compared = compare(fresh, stored + state.benchmarked, store.path, opts, bench_repo, thresholds)
    candidates = merge(compared, read_regressions(out, new_commits, thresholds))
    regressions = confirm.for_job(candidates, job, opts, bench_repo, stored + state.benchmarked,
                                  state.stamp)
    header = (
        f"stardag nightly {state.stamp}, machine {opts.machine}: "
        f"{len({r.commit_hash for r in state.benchmarked})} commit(s) benchmarked in this run, "
        f"{sum(r.alarm for r in regressions)} new regression(s)"
    ) + environment.load_note(state.loads)
    report = write_report(out, regressions, header)
    for line in report.rstrip().splitlines():
        (log.warning if any(r.alarm for r in regressions) else log.info)("report: %s", line)
    write_summary(out, opts, state, regressions)
    return regressions


def compare(fresh, stored, results_dir, opts, bench_repo, thresholds=None):
    """``asv compare`` of each fresh result against its nearest benchmarked ancestor.

    ``stored``: every result of the machine, this run's included.
    """
    by_env = {(r.commit_hash, r.env_name): r for r in stored}
    units = _units(results_dir)
    found = []
    lineage: dict[str, list[str]] = {}  # one git rev-list per commit, not per Python
    for new in fresh:
        if new.commit_hash not in lineage:
            lineage[new.commit_hash] = ancestors(bench_repo, new.commit_hash,
                                                 limit=opts.max_commits * 10)
        for parent in lineage[new.commit_hash]:
            base = by_env.get((parent, new.env_name))
            if base is not None:
                graph = {"machine": opts.machine, "python": new.python}
                found += compare_to_baseline(
                    Results.load(new.path, opts.machine), Results.load(base.path, opts.machine),
                    graph, units, opts.compare_factor, thresholds,
                )
                break
    return found


def _units(results_dir: str) -> dict[str, str]:
    try:
        with open(os.path.join(results_dir, "benchmarks.json"), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return {k: v.get("unit", "") for k, v in data.items() if isinstance(v, dict)}


def write_summary(out, opts, state, regressions) -> None:
    """``nightly.json``: this run, for scripts; no local paths (the site is public)."""
    summary = {
        "run": state.stamp,
        "machine": opts.machine,
        "benchmarked": [
            {"commit": r.commit_hash, "python": r.python, "failed": list(r.failed)}
            for r in state.benchmarked
        ],
        "problems": [public(p, opts) for p in state.problems],
        "new_regressions": sum(r.alarm for r in regressions),
        "load_1min": [min(state.loads), max(state.loads)] if state.loads else None,
        "n_cpus": os.cpu_count(),
    }
    with open(os.path.join(out, "nightly.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)


def public(text: str, opts) -> str:
    """``text`` with this machine's paths replaced by names a reader of the site can place."""
    places = [(opts.results_dir, "RESULTS"), (opts.log_dir, "STATE/logs"),
              (opts.state_dir, "STATE"), (opts.repo, "REPO"),
              (opts.deploy_dir or "", "DEPLOY"), (os.path.expanduser("~"), "~")]
    for path, name in sorted(places, key=lambda p: -len(p[0])):
        if len(path) > 1:
            text = re.sub(re.escape(path) + r"(?![\w.-])", name, text)
    return text
