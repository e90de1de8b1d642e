"""A candidate regression is measured again the same night, interleaved with its baseline.

On a shared machine a timing of identical code moves by up to 4x between two
nights: the noise comes from the night, not from the commit. A slower commit
stays slower when it is measured in the same minutes as the commit before it.
So each timed candidate (regression.py) is measured again: ``rounds`` rounds,
each one ``asv run`` of just the candidate benchmarks on both commits (one
process each; the order alternates A B, B A, ...), into a scratch results
directory that never enters the results store or the site. It is confirmed
when the median of all its samples is slower by the factor it was found with
AND asv's Mann-Whitney U test on the rounds' medians says the two differ
(p < ``P_THRESHOLD``); otherwise it is noise, listed as such with both sets of
figures. The unit of the test is the round, not the sample: the samples of one
process share its luck (the core it got, what ran beside it, that minute), so
identical code measured 1.07x slower over 4 processes each came out at
p = 7e-11 when they were pooled as independent. Instruction counts need no
second look (their verdict is ``counted`` already).

A candidate inside its benchmark's noise band on this machine (noise.py) is
noise without a second look. Cost: at most ``max_confirm`` candidates a night, the biggest slowdowns of
tonight's commits first, and no new group after ``minutes``; the rest wait
for the next night (``pending`` in ``STATE/confirmations.json``). Verdicts are
kept there too, so a step asv keeps listing night after night is measured once.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

from asv._stats import mann_whitney_u
from asv.results import Results

from _nightly.git import GitError, ancestors
from _nightly.noise import Band, History
from _nightly.regression import CANDIDATE, CONFIRMED, NOISE, UNMEASURED, Regression
from _nightly.scratch import fresh_dir, remove

log = logging.getLogger("nightly")

# Confirmation is a second look at one pre-selected benchmark, and it must
# also be slower by the factor: a looser level than asv compare's 0.002 keeps
# a 6-round track_ benchmark (one value a round) able to pass with one overlap.
P_THRESHOLD = 0.01
# The U test on R rounds against R can reach p < 0.01 only from R = 5 on (2 / C(10, 5)).
MIN_ROUNDS = 5
MEMORY_FILE = "confirmations.json"


@dataclass
class Confirmer:
    """What confirming needs from the job: how to run asv, and where things are."""

    run_asv: Callable[..., int]  # (config path, *asv args) -> exit status
    write_conf: Callable[[str], str]  # results dir -> a config path writing there
    machine: str
    env_type: str
    repo: str  # the checkout: baselines of candidates found by step detection
    benchmarked: set[tuple[str, str]]  # (commit, python) with a stored result
    state_dir: str
    rounds: int = 6
    max_confirm: int = 10
    minutes: float | None = 60.0
    stamp: str = ""
    history: History | None = None  # the benchmarks' noise bands (noise.py)
    spent: dict = field(default_factory=dict)

    def confirm(self, candidates: list[Regression]) -> list[Regression]:
        """Every candidate with its verdict; timed ones measured again within the budget."""
        started = time.monotonic()
        memory = _load_memory(os.path.join(self.state_dir, MEMORY_FILE))
        done: list[Regression] = []
        todo: list[Regression] = []
        keys = {r.key for r in candidates}
        # Left unmeasured on an earlier night; their first slow commit is not new now.
        pending = [replace(r, new=False, verdict=CANDIDATE, note="")
                   for k, r in memory["pending"].items() if k not in keys]
        for r in candidates + pending:
            known = memory["verdicts"].get(r.key)
            if r.verdict != CANDIDATE:
                done.append(r)
            elif known is not None:
                night = (known.interleaved or {}).get("night") or "an earlier night"
                done.append(replace(r, verdict=known.verdict, interleaved=known.interleaved,
                                    note=f"measured again by run {night}"))
            elif (band := self._band(r)) is not None and (r.ratio or 0) <= band.factor:
                done.append(replace(r, verdict=NOISE, note=band.describe()))
            else:
                todo.append(r)
        todo.sort(key=lambda r: (not r.new, -(r.ratio or 0), r.benchmark))
        over = [replace(r, verdict=UNMEASURED, note=f"over --max-confirm {self.max_confirm}")
                for r in todo[self.max_confirm:]]
        judged = self._measure(todo[:self.max_confirm], started)
        # A candidate left unmeasured on an earlier night and confirmed now was never
        # reported: it is news tonight (it alarms), though its commit is not new.
        judged = [replace(r, new=True, note="; ".join(filter(None, [r.note, "nominated on an earlier night"])))
                  if r.verdict == CONFIRMED and not r.new and r.key in memory["pending"] else r
                  for r in judged]
        done += over + judged
        for r in over + judged:
            if r.verdict in (CONFIRMED, NOISE):
                memory["verdicts"][r.key] = r
                memory["pending"].pop(r.key, None)
            elif r.verdict == UNMEASURED:
                memory["pending"][r.key] = r
        _save_memory(os.path.join(self.state_dir, MEMORY_FILE), memory)
        counts = {v: sum(r.verdict == v for r in done) for v in (CONFIRMED, NOISE, UNMEASURED)}
        self.spent = dict(counts, seconds=round(time.monotonic() - started, 1),
                          measured=len(judged) - sum(r.verdict == UNMEASURED for r in judged))
        log.info("confirmation: %d candidate(s) measured again in %.0f s (--max-confirm %d, "
                 "--confirm-rounds %d): %d confirmed, %d noise, %d not measured",
                 self.spent["measured"], self.spent["seconds"], self.max_confirm, self.rounds,
                 counts[CONFIRMED], counts[NOISE], counts[UNMEASURED])
        return sorted(done, key=lambda r: (not r.new, -(r.ratio or 0), r.benchmark))

    def _band(self, r: Regression) -> Band | None:
        if self.history is None or r.counted:
            return None
        return self.history.band(r.benchmark, r.commit_after, r.graph.get("python", ""))

    def _measure(self, todo: list[Regression], started: float) -> list[Regression]:
        groups: dict[tuple[str, str, str], list[Regression]] = {}
        out = []
        for r in todo:
            baseline = r.commit_before or self._baseline(r.commit_after, r.graph.get("python", ""))
            if baseline is None:
                out.append(replace(r, verdict=UNMEASURED,
                                   note="no benchmarked ancestor to measure it against"))
                continue
            groups.setdefault((baseline, r.commit_after, r.graph.get("python", "")), []).append(r)
        for (baseline, commit, python), rows in groups.items():
            if self.minutes is not None and time.monotonic() - started > self.minutes * 60:
                out += [replace(r, verdict=UNMEASURED,
                                note=f"confirmation time budget of {self.minutes:g} min used up")
                        for r in rows]
                continue
            out += self._measure_group(baseline, commit, python, rows)
        return out

    def _baseline(self, commit: str, python: str) -> str | None:
        try:
            parents = ancestors(self.repo, commit, limit=200)
        except GitError as exc:
            log.warning("confirmation: %s", exc)
            return None
        return next((p for p in parents if (p, python) in self.benchmarked), None)

    def _measure_group(self, baseline: str, commit: str, python: str,
                       rows: list[Regression]) -> list[Regression]:
        names = [r.benchmark for r in rows]
        log.info("confirmation: %s..%s python %s, %d round(s) interleaved: %s",
                 baseline[:8], commit[:8], python, self.rounds, ", ".join(names))
        # commit -> benchmark -> one list of samples per round (a track_*: its one value)
        rounds: dict = {c: {n: [] for n in names} for c in (baseline, commit)}
        failures: list[str] = []
        for i in range(self.rounds):
            order = [baseline, commit] if i % 2 == 0 else [commit, baseline]
            self._asv_run(python, names, order, rounds, failures, "-a", "rounds=1")
        remove(os.path.join(self.state_dir, "confirm"))
        return [self._judge(r, baseline, rounds[baseline][r.benchmark],
                            rounds[commit][r.benchmark], failures) for r in rows]

    def _asv_run(self, python: str, names: list[str], commits: list[str], rounds: dict,
                 failures: list[str], *extra: str) -> None:
        """One ``asv run`` of ``names`` on ``commits`` into a scratch dir: one round of each."""
        scratch = fresh_dir(os.path.join(self.state_dir, "confirm"))
        hashfile = os.path.join(scratch, "commits.txt")
        with open(hashfile, "w") as f:
            f.write("".join(c + "\n" for c in commits))
        selection = [a for n in names for a in ("--bench", f"^{re.escape(n)}$")]
        code = self.run_asv(self.write_conf(os.path.join(scratch, "results")), "run",
                            "--show-stderr", "--record-samples", "--machine", self.machine,
                            "-E", f"{self.env_type}:{python}", *extra, *selection,
                            f"HASHFILE:{hashfile}")
        found = _read_samples(os.path.join(scratch, "results", self.machine), names)
        for c in commits:
            if code != 0 or any(not found.get(c, {}).get(n) for n in names):
                failures.append(f"asv run of {c[:8]} exited {code}")
            for n in names:
                if found.get(c, {}).get(n):
                    rounds[c][n].append(found[c][n])

    def _judge(self, r: Regression, baseline: str, base_rounds: list[list[float]],
               new_rounds: list[list[float]], failures: list[str]) -> Regression:
        """The verdict on ``r`` from its rounds: the medians' ratio, the U test on round medians."""
        base = [x for one in base_rounds for x in one]
        new = [x for one in new_rounds for x in one]
        if len(base_rounds) < 2 or len(new_rounds) < 2:
            why = "; ".join(failures[:3]) or "no samples"
            return replace(r, verdict=UNMEASURED, note=f"measuring it again failed ({why})")
        _u, p_value = mann_whitney_u([statistics.median(one) for one in base_rounds],
                                     [statistics.median(one) for one in new_rounds])
        base_median, new_median = statistics.median(base), statistics.median(new)
        ratio = new_median / base_median if base_median > 0 else float("inf")
        confirmed = ratio > r.factor and p_value < P_THRESHOLD
        figures = dict(baseline=baseline, rounds=min(len(base_rounds), len(new_rounds)),
                       base_samples=base, new_samples=new,
                       base_median=base_median, new_median=new_median, ratio=ratio,
                       p_value=p_value, p_threshold=P_THRESHOLD, night=self.stamp)
        note = f"{len(failures)} run(s) failed" if failures else ""
        return replace(r, verdict=CONFIRMED if confirmed else NOISE, interleaved=figures, note=note)


def _read_samples(machine_dir: str, names: list[str]) -> dict[str, dict[str, list[float]]]:
    """commit -> benchmark -> its samples (or its value), from one asv run's result files."""
    found: dict[str, dict[str, list[float]]] = {}
    if not os.path.isdir(machine_dir):
        return found
    for file in os.listdir(machine_dir):
        if not file.endswith(".json") or file == "machine.json":
            continue
        res = Results.load(os.path.join(machine_dir, file))
        mine = found.setdefault(res.commit_hash, {})
        for key in res.get_all_result_keys():
            params = res.get_result_params(key)
            combos = ([key] if not params else
                      [f"{key}({', '.join(c)})" for c in itertools.product(*params)])
            values = res.get_result_value(key, params)
            samples = res.get_result_samples(key, params)
            for name, value, sample in zip(combos, values, samples):
                if name in names and value is not None and value == value:
                    mine[name] = list(sample) if sample else [value]
    return found


def _load_memory(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return {part: {k: Regression(**v) for k, v in data.get(part, {}).items()}
                for part in ("verdicts", "pending")}
    except (OSError, ValueError, TypeError) as exc:
        if os.path.exists(path):
            log.warning("confirmation: ignoring unreadable %s (%s): candidates are measured "
                        "again", path, exc)
        return {"verdicts": {}, "pending": {}}


def _save_memory(path: str, memory: dict) -> None:
    data = {part: {k: asdict(r) for k, r in rows.items()} for part, rows in memory.items()}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Job:
    """What the nightly job hands over: its asv runner, its config, its environment type."""

    run_asv: Callable[..., int]
    raw: dict
    env_type: str


def for_job(candidates: list[Regression], job: Job, opts, repo: str, results: list,
            stamp: str) -> list[Regression]:
    """The job's report step: every candidate with its verdict (see ``Confirmer``)."""
    from _nightly import environment

    conf_path = os.path.join(opts.state_dir, "asv-confirm.conf.json")
    return Confirmer(
        run_asv=job.run_asv,
        write_conf=lambda results_dir: environment.write_config(
            job.raw, conf_path, results_dir=results_dir, opts=opts),
        machine=opts.machine, env_type=job.env_type, repo=repo,
        benchmarked={(r.commit_hash, r.python) for r in results},
        state_dir=opts.state_dir, rounds=opts.confirm_rounds, max_confirm=opts.max_confirm,
        minutes=opts.confirm_minutes, stamp=stamp,
        history=History(repo, results, opts.machine),
    ).confirm(candidates)
