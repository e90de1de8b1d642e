"""How the build's own cost grows: light tasks (``sum(range(100))``) from 100 to 100,000.

``LightScaling.track_overhead_us``: (build time - floor) / tasks, in microseconds,
where the floor is the same tasks' ``run()`` called in order, in one loop, on
the same storage, right before and after the build (the lower kept): the work
plus one write each, with no scheduler. Flat over ``n_tasks`` = linear scaling.
``LightFloor.track_floor_us``: that floor per task, shown beside the overhead.
``LargeDagMemory.peakmem_build``: peak RSS of creating and building a large DAG.

There is no ``time_`` here: seconds are n_tasks x (overhead + floor), and a
second build per case would not fit the suite's 5-minute budget.

Storage ``memory`` (``memory://`` targets, ``LightScaling``) isolates the
scheduler; ``file`` (``LightScalingFile``) writes under the benchmark target
root (tmpfs by default). The process pool and Dask cannot use in-memory targets
(each process has its own). To keep a full run of the suite
within 5 minutes, file builds stop at 10,000 tasks, and only ``sequential``
builds 100,000: the scheduler's scaling shows there, and what a task costs in
each other configuration is counted in instructions by bench_cost.py, which
does not move with the machine's load.
"""

from __future__ import annotations

from benchmarks import configuration, dags
from benchmarks.common import (
    SMOKE,
    SMOKE_MAX_TASKS,
    BuildBenchmark,
    RootPool,
    build_checked,
    check_size,
    import_stardag,
    timed_build,
)
from benchmarks.ideal import run_floor

SHAPES = ["fan_in", "chain"]
SIZES = [100, 10_000, 100_000]  # three decades; 1,000 left out for the suite's budget
STORAGES = ["memory", "file"]
MAX_FILE_TASKS = 10_000
FILE_SIZES = [n for n in SIZES if n <= MAX_FILE_TASKS]
# In-memory targets live in one process: only configurations that run tasks here can use them.
IN_PROCESS = [c.name for c in configuration.CONFIGURATIONS.values() if c.in_process]
MAX_TASKS_BUT_SEQUENTIAL = 10_000
LARGE_DAG_TASKS = SMOKE_MAX_TASKS if SMOKE else 20_000


def _check_storage(storage: str, n_tasks: int, config: configuration.Configuration | None,
                   shape: str = "") -> None:
    check_size(n_tasks)
    if config is not None and config.max_light_tasks is not None and n_tasks > config.max_light_tasks:
        raise NotImplementedError(f"{config.name} stops at {config.max_light_tasks} light tasks (suite budget)")
    if shape == "chain" and config is not None and config.max_light_chain is not None \
            and n_tasks > config.max_light_chain:
        raise NotImplementedError(f"{config.name} chains stop at {config.max_light_chain} tasks (suite budget)")
    if config is not None and config.name != "sequential" and n_tasks > MAX_TASKS_BUT_SEQUENTIAL:
        raise NotImplementedError(
            f"only sequential builds over {MAX_TASKS_BUT_SEQUENTIAL} light tasks (suite budget); "
            f"bench_cost counts {config.name}'s cost per task"
        )
    if storage == "file" and n_tasks > MAX_FILE_TASKS:
        raise NotImplementedError(
            f"file targets stop at {MAX_FILE_TASKS} tasks (suite budget); "
            f"{n_tasks} tasks run with in-memory targets"
        )


class LightScaling(BuildBenchmark):
    """In-memory targets, so the build's own cost shows: the configurations that run tasks in this process."""

    params = [SHAPES, SIZES, ["memory"], IN_PROCESS]
    param_names = ["shape", "n_tasks", "storage", "configuration"]

    def setup(self, run_dir: str, shape: str, n_tasks: int, storage: str, config: str) -> None:
        import_stardag()
        self.config = configuration.get(config)
        _check_storage(storage, n_tasks, self.config, shape)
        self.builder = self.config.make_builder(run_dir)
        self.dag = dags.light_family(shape, n_tasks, self.config.async_tasks)
        self.roots = RootPool(storage)

    def track_overhead_us(self, run_dir: str, shape: str, n_tasks: int, storage: str, config: str) -> float:
        """The build's own cost: its time minus the floor (the tasks' run() in a loop), in µs per task."""
        # The floor is taken on both sides of the build and the lower kept: on a
        # shared machine a load spike during one floor run would hide the overhead.
        floor = run_floor(self.dag, self.roots.fresh())
        measured = timed_build(self.builder, self.dag, self.roots)
        floor = min(floor, run_floor(self.dag, self.roots.fresh()))
        return (measured - floor) / n_tasks * 1e6

    track_overhead_us.unit = "us per task"


class LightScalingFile(LightScaling):
    """The same with file targets (tmpfs by default), under every configuration, up to 10,000 tasks.

    A class of its own so that the suite has no benchmark that always skips
    (in-memory targets in other processes, 100,000 files): each costs a process.
    """

    params = [SHAPES, FILE_SIZES, ["file"], configuration.NAMES]


class LightFloor(BuildBenchmark):
    """The floor alone: work + one write per task, no scheduler (per task, us)."""

    params = [SHAPES, SIZES, STORAGES]
    param_names = ["shape", "n_tasks", "storage"]

    def setup(self, run_dir: str, shape: str, n_tasks: int, storage: str) -> None:
        import_stardag()
        _check_storage(storage, n_tasks, None)
        self.dag = dags.light_family(shape, n_tasks, False)
        self.roots = RootPool(storage)

    def track_floor_us(self, run_dir: str, shape: str, n_tasks: int, storage: str) -> float:
        """The floor: each task's run() called in a plain loop (its work and one write), in µs per task."""
        return run_floor(self.dag, self.roots.fresh()) / n_tasks * 1e6

    track_floor_us.unit = "us per task"


class LargeDagMemory(BuildBenchmark):
    """Peak memory of a 20,000-task fan-in of light tasks, created and built.

    asv measures the benchmark process only: the process pool's workers, and
    what they allocate, are not counted.
    """

    params = [configuration.NAMES]
    param_names = ["configuration"]

    def setup(self, run_dir: str, config: str) -> None:
        import_stardag()
        self.config = configuration.get(config)
        cap = self.config.max_light_tasks
        if cap is not None and LARGE_DAG_TASKS > cap:
            raise NotImplementedError(f"{config} stops at {cap} light tasks (suite budget)")
        self.builder = self.config.make_builder(run_dir)
        self.roots = RootPool("file")

    def peakmem_build(self, run_dir: str, config: str) -> None:
        """Peak memory of creating and building a fan-in of light tasks (this process only)."""
        dag = dags.fan_in(dags.light_class(self.config.async_tasks), LARGE_DAG_TASKS)
        build_checked(self.builder, dag, self.roots.fresh())
