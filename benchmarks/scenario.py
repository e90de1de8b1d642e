"""The benchmark scenarios: a workload on a DAG shape, with the ideal time of each configuration.

Shared by the asv suite (bench_build.py) and the standalone runner
(run_benchmark.py), so both measure the same things. benchmarks/README.md
lists them beside the seed's (upstream stardag's) scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from benchmarks import configuration, dags, ideal

# The rows of the seed's Recommendations table, by ``Scenario.use_case``.
USE_CASES = {
    "io": "IO-bound tasks",
    "cpu_short": "CPU-bound tasks < 100 ms",
    "cpu_long": "CPU-bound tasks > 100 ms",
    "light": "Light/fast tasks",
}
_USE_CASE = {"io": "io", "file": "io", "cpu": "cpu_short", "heavy": "cpu_long", "light": "light"}


@dataclass(frozen=True)
class Scenario:
    """``make_dag(async_tasks)`` gives the DAG with the sync or the ``Async*`` task classes.

    ``hybrid``: the tasks define both ``run`` and ``run_aio`` whatever the
    configuration (the build sends them to the event loop); ``configurations``:
    where the scenario means something (``None``: everywhere).
    """

    name: str
    workload: str  # "io", "cpu", "heavy", "light" or "file": what a task spends its time on
    shape: str
    make_dag: Callable[[bool], dags.Dag]
    io_seconds: float = 0.0  # the sleep of each task (io workload)
    hybrid: bool = False
    configurations: tuple[str, ...] | None = None

    @property
    def use_case(self) -> str:
        return _USE_CASE[self.workload]

    def runs_under(self, config: str) -> bool:
        return self.configurations is None or config in self.configurations

    def dag_for(self, config: configuration.Configuration) -> dags.Dag:
        return self.make_dag(self.hybrid or config.async_tasks)

    def check(self, config: configuration.Configuration) -> None:
        """Raise NotImplementedError (asv: skip) where the scenario does not apply or the commit lacks an API."""
        if not self.runs_under(config.name):
            raise NotImplementedError(
                f"{self.name} runs under {', '.join(self.configurations or ())} only"
            )
        if self.workload == "file":
            from stardag import target

            method = "open_aio" if config.async_tasks else "open"
            if not hasattr(getattr(target, "LocalTarget", None), method):
                raise NotImplementedError(f"this commit's targets have no {method}() (file I/O scenarios)")

    def unit_seconds(self, dag: dags.Dag) -> float:
        """The work of one task on this machine."""
        from benchmarks import tasks

        if self.workload == "io":
            return self.io_seconds
        if self.workload in ("cpu", "heavy"):
            n = tasks.HEAVY_ITERATIONS if self.workload == "heavy" else tasks.CPU_ITERATIONS
            return n * ideal.seconds_per_sha256()
        return ideal.floor_seconds_per_task(dag)

    def slots(self, config: configuration.Configuration) -> int:
        """Tasks that can make progress at once (see configuration.py)."""
        if self.hybrid:  # every task runs on the event loop, whatever the pool
            return configuration.ASYNC_WORKERS
        if self.workload == "io":
            return config.io_slots
        if self.workload == "file":
            # Writes to tmpfs are CPU work in the kernel, done outside the GIL, and
            # open_aio() runs them in the loop's executor threads: the cores bound it.
            return min(config.io_slots, configuration.n_cores())
        return config.cpu_slots

    def ideal_seconds(self, config: configuration.Configuration, dag: dags.Dag) -> float:
        return ideal.ideal_makespan(dag.deps, self.unit_seconds(dag), self.slots(config))


def _classes(sync_name: str) -> Callable[[bool], Any]:
    def pick(async_tasks: bool) -> Any:
        from benchmarks import tasks

        return getattr(tasks, ("Async" + sync_name) if async_tasks else sync_name)

    return pick


_io, _cpu, _heavy, _light = (_classes(n) for n in ("IOBoundTask", "CPUBoundTask", "HeavyCPUTask", "LightTask"))
_dyn_io, _dyn_cpu, _dyn_light = (_classes(n) for n in ("DynamicIOTask", "DynamicCPUTask", "DynamicLightTask"))
_write, _read_write = _classes("FileWriteTask"), _classes("FileReadWriteTask")


def _scenarios() -> tuple[Scenario, ...]:
    from benchmarks.common import WORK_SCALE

    io, short_io = 0.1 * WORK_SCALE, 0.01 * WORK_SCALE  # tasks.IO_SECONDS, SHORT_IO_SECONDS
    return (
        Scenario("io_tree", "io", "tree", lambda a: dags.tree(_io(a)), io),
        Scenario("io_flat", "io", "flat", lambda a: dags.flat(_io(a)), io),
        Scenario("io_flat_many", "io", "flat_many",
                 lambda a: dags.flat_many(_io(a), sleep_duration=short_io), short_io),
        Scenario("io_tree_hybrid", "io", "tree", lambda a: dags.tree(_io(a)), io,
                 hybrid=True, configurations=("thread_pool",)),
        Scenario("io_flat_hybrid", "io", "flat", lambda a: dags.flat(_io(a)), io,
                 hybrid=True, configurations=("thread_pool",)),
        Scenario("io_dynamic_flat", "io", "dynamic_flat", lambda a: dags.dynamic_flat(_dyn_io(a)), io),
        Scenario("cpu_tree", "cpu", "tree", lambda a: dags.tree(_cpu(a))),
        Scenario("cpu_flat", "cpu", "flat", lambda a: dags.flat(_cpu(a))),
        Scenario("cpu_dynamic_flat", "cpu", "dynamic_flat", lambda a: dags.dynamic_flat(_dyn_cpu(a))),
        Scenario("heavy_cpu", "heavy", "heavy", lambda a: dags.heavy(_heavy(a))),
        Scenario("light_tree", "light", "tree", lambda a: dags.tree(_light(a))),
        Scenario("light_flat", "light", "flat", lambda a: dags.flat(_light(a))),
        Scenario("light_dynamic_flat", "light", "dynamic_flat", lambda a: dags.dynamic_flat(_dyn_light(a))),
        Scenario("file_io_flat", "file", "flat", lambda a: dags.flat(_write(a))),
        Scenario("file_io_heavy", "file", "flat_17", lambda a: dags.flat_17(_read_write(a))),
    )


SCENARIOS = {s.name: s for s in _scenarios()}
