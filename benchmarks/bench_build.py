"""Build time and efficiency of each scenario under each configuration.

``time_build``: one whole build from a fresh target root (seconds).
``track_efficiency``: ideal makespan / the median of this run's ``time_build``
samples of the same scenario and configuration, where the ideal is Hu's
schedule of the DAG with the configuration's parallel slots
(benchmarks/ideal.py). 1.0 is the physical limit; the gap is overhead, the GIL
or waiting. It reuses the samples (left in the run's directory) rather than
building again, which would double the suite's time; run without them
(``asv run --bench track_efficiency``), it times one build of its own.
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
    """A scenario family: ``params`` are its shapes and every configuration."""

    param_names = ["scenario", "configuration"]

    def setup(self, run_dir: str, scenario: str, config: str) -> None:
        import_stardag()
        self.scenario = SCENARIOS[scenario]
        self.config = configuration.get(config)
        self.builder = self.config.make_builder(run_dir)
        self.dag = self.scenario.make_dag(self.config.async_tasks)
        self.roots = RootPool("file")
        self.samples: list[float] = []

    def time_build(self, run_dir: str, scenario: str, config: str) -> None:
        """Seconds for one whole build of the scenario's DAG from a fresh target root."""
        self.samples.append(timed_build(self.builder, self.dag, self.roots))

    def track_efficiency(self, run_dir: str, scenario: str, config: str) -> float:
        """The ideal schedule's time over the median build time of this run (1.0: the physical limit)."""
        samples = recorded_samples(run_dir, f"{scenario}-{config}") or [timed_build(self.builder, self.dag, self.roots)]
        return self.scenario.ideal_seconds(self.config, self.dag) / statistics.median(samples)

    track_efficiency.unit = "ideal / measured"

    def teardown(self, run_dir: str, scenario: str, config: str) -> None:
        record_samples(run_dir, f"{scenario}-{config}", getattr(self, "samples", []))
        super().teardown(run_dir, scenario, config)


class IOBound(_Scenario):
    """Tasks sleep 0.1 s: the 15-task tree and the 33-task fan-in."""

    params = [["io_tree", "io_flat"], configuration.NAMES]


class CPUBound(_Scenario):
    """Tasks hash for ~20 ms: the 15-task tree and the 33-task fan-in."""

    params = [["cpu_tree", "cpu_flat"], configuration.NAMES]


class HeavyCPU(_Scenario):
    """Five ~1 s tasks, four of them parallel."""

    params = [["heavy_cpu"], configuration.NAMES]


class DynamicDeps(_Scenario):
    """IO tasks found at run time: the root's 2 dependencies each yield 4 leaves."""

    params = [["io_dynamic"], configuration.NAMES]
