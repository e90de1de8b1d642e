"""Build time and efficiency of each scenario under each configuration.

``time_build``: one whole build from a fresh target root (seconds).
``track_efficiency``: ideal makespan / the median of this run's ``time_build``
samples of the same scenario and configuration, where the ideal is Hu's
schedule of the DAG with the configuration's parallel slots
(benchmarks/ideal.py). 1.0 is the physical limit; the gap is overhead, the GIL
or waiting. It reuses the samples (left in the run's directory) rather than
building again, which would double the suite's time; run without them
(``asv run --bench track_efficiency``), it times one build of its own.

One class per family of scenarios (benchmarks/scenario.py). A class whose
``params`` leave out a configuration does so for the suite's time budget, or
because the scenario means nothing there (its docstring says which).
"""

from __future__ import annotations

import statistics

from benchmarks import configuration
from benchmarks.common import (
    BuildBenchmark,
    RootPool,
    import_stardag,
    record_samples,
    recorded_samples,
    timed_build,
)
from benchmarks.scenario import SCENARIOS


class _Scenario(BuildBenchmark):
    """A scenario family: ``params`` are its scenarios and configurations."""

    param_names = ["scenario", "configuration"]

    def setup(self, run_dir: str, scenario: str, config: str) -> None:
        import_stardag()
        self.scenario = SCENARIOS[scenario]
        self.config = configuration.get(config)
        self.scenario.check(self.config)
        # Samples from an earlier process: time_build ran there, so this is
        # track_efficiency, which needs no builder. Making one can cost ~0.5 s
        # (Dask: importing distributed, finding the cluster).
        self.recorded = recorded_samples(run_dir, f"{scenario}-{config}")
        self.builder = None if self.recorded else self.config.make_builder(run_dir)
        self.dag = self.scenario.dag_for(self.config)
        self.roots = RootPool("file")
        self.samples: list[float] = []

    def time_build(self, run_dir: str, scenario: str, config: str) -> None:
        """Seconds for one whole build of the scenario's DAG from a fresh target root."""
        self.samples.append(timed_build(self.builder, self.dag, self.roots))

    def track_efficiency(self, run_dir: str, scenario: str, config: str) -> float:
        """The ideal schedule's time over the median build time of this run (1.0: the physical limit)."""
        samples = self.recorded or [timed_build(self.builder, self.dag, self.roots)]
        return self.scenario.ideal_seconds(self.config, self.dag) / statistics.median(samples)

    track_efficiency.unit = "ideal / measured"

    def teardown(self, run_dir: str, scenario: str, config: str) -> None:
        record_samples(run_dir, f"{scenario}-{config}", getattr(self, "samples", []))
        super().teardown(run_dir, scenario, config)


class IOBound(_Scenario):
    """Tasks sleep: 0.1 s on the 15-task tree and the 33-task fan-in, 0.01 s on the 101-task fan-in."""

    params = [["io_tree", "io_flat", "io_flat_many"], configuration.NAMES]


class HybridIO(_Scenario):
    """IO tasks that define ``run`` and ``run_aio``, built with the thread pool, as the seed does.

    The build sends them to the event loop: this is what the seed's thread_pool
    IO figures measure (IOBound's thread_pool runs sync-only tasks in threads).
    Under any other configuration the build would do the same as under async
    (or, sequential, run ``run()`` inline), so only thread_pool is measured.
    """

    params = [["io_tree_hybrid", "io_flat_hybrid"], ["thread_pool"]]


class CPUBound(_Scenario):
    """Tasks hash for ~20 ms: the 15-task tree and the 33-task fan-in."""

    params = [["cpu_tree", "cpu_flat"], configuration.NAMES]


class HeavyCPU(_Scenario):
    """Five ~1 s tasks, four of them parallel.

    Under thread_pool, the default configuration, it shows what the GIL leaves of
    four parallel tasks (a sequential build at best); not under async, where CPU
    work on the event loop is a sequential build by construction (~6 s of the
    suite's budget for nothing new). The standalone runner still builds all five.
    """

    params = [["heavy_cpu"], ["sequential", "thread_pool", "process_pool", "dask"]]


class Light(_Scenario):
    """``sum(range(100))`` per task on the 15-task tree and the 33-task fan-in: the build's own cost."""

    params = [["light_tree", "light_flat"], configuration.NAMES]


class FileIO(_Scenario):
    """Tasks write their output through ``output().open("w")`` (async: ``open_aio``).

    ``file_io_flat``: 32 leaves and a root, one 10 kB write each.
    ``file_io_heavy``: 16 leaves and a root, 3 cycles each of writing 50 kB and
    reading it back with ``open("r")``. Skipped on commits without ``open``.
    Inline, on threads and on the event loop: the seed's question (threads or
    async for file I/O). In the process pool and on Dask these millisecond
    builds measure the pool's start and round trips, which the Light family
    shows already (the standalone runner still builds them there).
    """

    params = [["file_io_flat", "file_io_heavy"], ["sequential", "thread_pool", "async"]]


class DynamicDeps(_Scenario):
    """Tasks found at run time, in the seed's shape: the root yields its 8 leaves (IO, CPU, light work)."""

    params = [["io_dynamic_flat", "cpu_dynamic_flat", "light_dynamic_flat"], configuration.NAMES]
