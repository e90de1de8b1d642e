"""The upstream stardag build-benchmark README's Recommendations table, checked against the data.

Each row names the configurations upstream recommends for a use case and which
measurements speak to it: the build times of the scenarios of that use case
(``io``, ``cpu_short``: ~20 ms tasks, ``cpu_long``: ~1 s tasks, ``light``; the
suite's benchmarks/scenario.py says which scenario is which), and for light
tasks also the per-task overhead of the light scaling family. A recommendation agrees with a
measurement when its best configuration is within `TOLERANCE` of the best of
all: closer than that is noise on a shared machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from _site.unit import fmt

TOLERANCE = 0.10  # relative; for overheads also at least OVERHEAD_SLACK_US
OVERHEAD_SLACK_US = 1.0


@dataclass(frozen=True)
class Claim:
    label: str  # the upstream table's "use case" column
    recommended: tuple[str, ...]
    use_case: str  # the scenarios' use case it is checked on; "" for no speed claim


UPSTREAM = (
    Claim("IO-bound tasks (API calls, file I/O)", ("thread_pool", "async"), "io"),
    Claim("CPU-bound tasks < 100 ms", ("thread_pool",), "cpu_short"),
    Claim("CPU-bound tasks > 100 ms", ("process_pool",), "cpu_long"),
    Claim("Light/fast tasks", ("sequential", "thread_pool"), "light"),
    Claim("Debugging", ("sequential",), ""),
)
LIGHT = "light"  # the use case the per-task overheads also speak to

# Before scenarios named their use case, their workload said it.
USE_CASE_OF_WORKLOAD = {"io": "io", "cpu": "cpu_short", "heavy": "cpu_long", "light": "light"}


@dataclass(frozen=True)
class Check:
    """One measurement (a scenario, or a light DAG case) against a claim."""

    case: str
    best: str
    best_value: float
    claimed: str  # the best of the recommended configurations measured ("" if none was)
    claimed_value: float
    unit: str

    @property
    def agrees(self) -> bool:
        if not self.claimed:
            return False
        slack = TOLERANCE * abs(self.best_value)
        if self.unit == "µs/task":
            slack = max(slack, OVERHEAD_SLACK_US)
        return self.claimed_value <= self.best_value + slack

    def describe(self) -> str:
        best = f"{self.best} {fmt(self.best_value, self.unit)}"
        if not self.claimed:
            return f"{self.case}: {best} best; no recommended configuration measured"
        if self.claimed == self.best:
            return f"{self.case}: {best} best"
        if self.unit == "s" and self.best_value > 0:
            gap = f"{self.claimed_value / self.best_value:.2f}x"
        else:
            gap = f"+{self.claimed_value - self.best_value:.1f} {self.unit}"
        return f"{self.case}: {best} best; {self.claimed} {fmt(self.claimed_value, self.unit)} ({gap})"


def check(claim: Claim, case: str, values: dict[str, float | None], unit: str) -> Check | None:
    """Compare ``values`` (configuration -> value, lower is better) with ``claim``; None if empty."""
    measured = {c: v for c, v in values.items() if v is not None and not math.isnan(v)}
    if not measured:
        return None
    best = min(measured, key=measured.get)
    mine = {c: v for c, v in measured.items() if c in claim.recommended}
    claimed = min(mine, key=mine.get) if mine else ""
    return Check(case, best, measured[best], claimed, mine.get(claimed, math.nan), unit)


def verdict(checks: list[Check]) -> str:
    """"agrees", "differs", "partly" (some measurements agree) or "not measured"."""
    if not checks:
        return "not measured"
    n = sum(c.agrees for c in checks)
    return "agrees" if n == len(checks) else "differs" if n == 0 else "partly"
