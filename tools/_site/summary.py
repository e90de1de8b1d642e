"""What the overview page shows, computed from `results.Results`: no HTML here.

Benchmarks are recognised by their parameters and units, never by a list of
names: a scenario benchmark has ``scenario`` and ``configuration`` parameters
(``time`` for build seconds, a ``track`` named ``*efficiency*`` for ideal /
measured); a per-task overhead is a ``track`` with a ``configuration`` parameter
in a "per task" unit, its floor the same unit without ``configuration``;
instruction counts are benchmarks of unit ``instructions``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from _site import recommendation
from _site.results import NOT_MEASURED, Benchmark, Results, Run

CONFIG = "configuration"


def finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


@dataclass
class ScenarioRow:
    scenario: str
    time_bench: str
    efficiency_bench: str  # "" when the suite has none for this scenario
    times: dict[str, float | None]
    efficiencies: dict[str, float | None]

    @property
    def winner(self) -> str:
        done = {c: t for c, t in self.times.items() if finite(t)}
        return min(done, key=done.get) if done else ""


@dataclass
class CaseRow:
    """One parameter case (other than configuration) of a per-configuration benchmark."""

    bench: str
    case: dict[str, str]
    values: dict[str, float | None]  # configuration -> value
    floor: float | None = math.nan

    @property
    def label(self) -> str:
        return " ".join(self.case.values()) or self.bench.rsplit(".", 1)[-1]

    @property
    def qualified_label(self) -> str:
        """The label with the benchmark's class (cases of two classes can read the same) and
        what one value is of, from a method named ``..._per_task`` ("per task")."""
        owner = self.bench.split(".")[-2] if self.bench.count(".") >= 2 else self.bench
        per = re.search(r"_per_([a-z]+)$", self.bench)
        return " ".join([owner, *([self.label] if self.case else []), *([f"per {per[1]}"] if per else [])])


@dataclass
class Section:
    python: str
    machine: str
    runs: list[Run]  # oldest first; the last is the newest commit
    configurations: list[str]
    scenarios: list[ScenarioRow] = field(default_factory=list)
    overheads: list[CaseRow] = field(default_factory=list)
    instructions: list[CaseRow] = field(default_factory=list)
    claims: list[tuple[recommendation.Claim, list[recommendation.Check]]] = field(default_factory=list)
    n_quick_left_out: int = 0  # quick or smoke runs not in ``runs``

    @property
    def newest(self) -> Run:
        return self.runs[-1]


def configurations(results: Results) -> list[str]:
    """Every configuration value in the data, in the order the benchmarks list them."""
    seen: dict[str, None] = {}
    for bench in results.benchmarks.values():
        seen.update(dict.fromkeys(bench.values_of(CONFIG)))
    return list(seen)


def _cases(bench: Benchmark, skip: str = CONFIG) -> list[dict[str, str]]:
    """Every combination of the benchmark's parameters other than ``skip``, in asv's order."""
    cases: list[dict[str, str]] = [{}]
    for name in bench.param_names:
        if name != skip:
            cases = [{**c, name: v} for c in cases for v in bench.values_of(name)]
    return cases


def _scenario_rows(results: Results, run: Run, order: list[str]) -> list[ScenarioRow]:
    rows: dict[str, ScenarioRow] = {}
    benches = [b for b in results.benchmarks.values()
               if "scenario" in b.param_names and CONFIG in b.param_names]
    for bench in benches:
        if bench.kind != "time":
            continue
        for scenario in bench.values_of("scenario"):
            rows[scenario] = ScenarioRow(scenario, bench.name, "", {}, {})
    for bench in benches:
        if bench.kind == "track" and "efficiency" in bench.name:
            for scenario in bench.values_of("scenario"):
                if scenario in rows:
                    rows[scenario].efficiency_bench = bench.name
    for row in rows.values():
        configs = results.benchmarks[row.time_bench].values_of(CONFIG)
        row.times = {c: run.value(row.time_bench, scenario=row.scenario, configuration=c) for c in configs}
        if row.efficiency_bench:
            row.efficiencies = {c: run.value(row.efficiency_bench, scenario=row.scenario, configuration=c)
                                for c in configs}
    known = [rows[s] for s in order if s in rows]
    return known + [r for s, r in rows.items() if s not in order]


def _per_task(bench: Benchmark) -> bool:
    return bench.kind == "track" and "per task" in bench.unit


def _case_rows(results: Results, run: Run, benches: list[Benchmark]) -> list[CaseRow]:
    rows = []
    for bench in benches:
        for case in _cases(bench):
            rows.append(CaseRow(bench.name, case, history([run], bench, **case)))
            rows[-1].values = {c: v[0] for c, v in rows[-1].values.items()}
    return rows


def _overhead_rows(results: Results, run: Run) -> list[CaseRow]:
    benches = list(results.benchmarks.values())
    rows = _case_rows(results, run, [b for b in benches if _per_task(b) and CONFIG in b.param_names])
    floors = [b for b in benches if _per_task(b) and CONFIG not in b.param_names]
    for row in rows:
        values = [run.value(floor.name, **row.case) for floor in floors]
        not_run = bool(values) and all(v is NOT_MEASURED for v in values)
        row.floor = next((v for v in values if finite(v)), NOT_MEASURED if not_run else math.nan)
    return rows


def _claims(section: Section, use_cases: dict[str, str]) -> None:
    for claim in recommendation.UPSTREAM:
        checks = []
        for row in section.scenarios:
            if claim.use_case and use_cases.get(row.scenario) == claim.use_case:
                found = recommendation.check(claim, row.scenario, row.times, "s")
                checks += [found] if found else []
        if claim.use_case == recommendation.LIGHT:
            for row in largest_per_shape(section.overheads):
                found = recommendation.check(claim, f"{row.label} tasks", row.values, "µs/task")
                checks += [found] if found else []
        section.claims.append((claim, checks))


def largest_per_shape(rows: list[CaseRow]) -> list[CaseRow]:
    """Per case without its size (``n_tasks``), the largest size measured in 2+ configurations."""
    best: dict[tuple, CaseRow] = {}
    for row in rows:
        if sum(finite(v) for v in row.values.values()) < 2:
            continue
        key = (row.bench, *(v for k, v in row.case.items() if k != "n_tasks"))
        if key not in best or _size(row) > _size(best[key]):
            best[key] = row
    return list(best.values())


def _size(row: CaseRow) -> int:
    size = row.case.get("n_tasks", "")
    return int(size) if size.isdigit() else 0


def sections(results: Results, use_cases: dict[str, str], scenario_order: list[str],
             show_quick: bool = False) -> list[Section]:
    """One section per (python, machine): its newest commit and its history.

    ``use_cases``: scenario -> the use case its measurements speak to (recommendation.py).
    Quick and smoke runs are left out (a section may have no run left) unless ``show_quick``.
    """
    configs = configurations(results)
    instruction_benches = [b for b in results.benchmarks.values() if b.unit == "instructions"]
    out = []
    for (python, machine), every_run in results.groups().items():
        runs = [r for r in every_run if show_quick or not r.quick]
        section = Section(python, machine, runs, configs, n_quick_left_out=len(every_run) - len(runs))
        out.append(section)
        if not runs:
            continue
        newest = section.newest
        section.scenarios = _scenario_rows(results, newest, scenario_order)
        section.overheads = _overhead_rows(results, newest)
        section.instructions = _case_rows(results, newest, instruction_benches)
        _claims(section, use_cases)
    return out


def history(runs: list[Run], bench: Benchmark, **case: str) -> dict[str, list[float | None]]:
    """Configuration ("" if it has none) -> the value at ``case`` in each run, oldest first."""
    configs = bench.values_of(CONFIG)
    if not configs:
        return {"": [r.value(bench.name, **case) for r in runs]}
    return {c: [r.value(bench.name, **case, configuration=c) for r in runs] for c in configs}
