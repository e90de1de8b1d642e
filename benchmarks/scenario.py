"""The benchmark scenarios: a workload on a DAG shape, with the ideal time of each configuration.

Shared by the asv suite (bench_build.py) and the standalone runner
(run_benchmark.py), so both measure the same things.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from benchmarks import configuration, dags, ideal


@dataclass(frozen=True)
class Scenario:
    name: str
    workload: str  # "io", "cpu" or "heavy": what a task spends its time on
    shape: str
    make_dag: Callable[[bool], dags.Dag]  # async_tasks -> Dag

    def unit_seconds(self) -> float:
        """The work of one task on this machine."""
        from benchmarks import tasks

        if self.workload == "io":
            return tasks.IO_SECONDS
        n = tasks.HEAVY_ITERATIONS if self.workload == "heavy" else tasks.CPU_ITERATIONS
        return n * ideal.seconds_per_sha256()

    def slots(self, config: configuration.Configuration) -> int:
        return config.io_slots if self.workload == "io" else config.cpu_slots

    def ideal_seconds(self, config: configuration.Configuration, dag: dags.Dag) -> float:
        return ideal.ideal_makespan(dag.deps, self.unit_seconds(), self.slots(config))


def _classes(sync_name: str) -> Callable[[bool], Any]:
    def pick(async_tasks: bool) -> Any:
        from benchmarks import tasks

        return getattr(tasks, ("Async" + sync_name) if async_tasks else sync_name)

    return pick


_io, _cpu, _heavy = _classes("IOBoundTask"), _classes("CPUBoundTask"), _classes("HeavyCPUTask")
_dynamic = _classes("DynamicIOTask")

SCENARIOS = {
    s.name: s
    for s in (
        Scenario("io_tree", "io", "tree", lambda a: dags.tree(_io(a))),
        Scenario("io_flat", "io", "flat", lambda a: dags.flat(_io(a))),
        Scenario("cpu_tree", "cpu", "tree", lambda a: dags.tree(_cpu(a))),
        Scenario("cpu_flat", "cpu", "flat", lambda a: dags.flat(_cpu(a))),
        Scenario("heavy_cpu", "heavy", "heavy", lambda a: dags.heavy(_heavy(a))),
        Scenario("io_dynamic", "io", "dynamic", lambda a: dags.dynamic(_dynamic(a), _io(a))),
    )
}
