"""Build time and efficiency of each scenario under each configuration.

``time_build``: one whole build from a fresh target root (seconds).
``track_efficiency``: ideal makespan / measured time of one more build, where
the ideal is Hu's schedule of the DAG with the configuration's parallel slots
(benchmarks/ideal.py). 1.0 is the physical limit; the gap is overhead, the GIL
or waiting.
"""

from __future__ import annotations

import timeit

from benchmarks import configuration
from benchmarks.common import BuildBenchmark, RootPool, build_checked, import_stardag
from benchmarks.scenario import SCENARIOS


class _Scenario(BuildBenchmark):
    """A scenario family: ``params`` are its shapes and every configuration."""

    param_names = ["scenario", "configuration"]

    def setup(self, scenario: str, config: str) -> None:
        import_stardag()
        self.scenario = SCENARIOS[scenario]
        self.config = configuration.get(config)
        self.builder = self.config.make_builder()
        self.dag = self.scenario.make_dag(self.config.async_tasks)
        self.roots = RootPool("file")

    def time_build(self, scenario: str, config: str) -> None:
        build_checked(self.builder, self.dag, self.roots.fresh())

    def track_efficiency(self, scenario: str, config: str) -> float:
        start = timeit.default_timer()
        build_checked(self.builder, self.dag, self.roots.fresh())
        measured = timeit.default_timer() - start
        return self.scenario.ideal_seconds(self.config, self.dag) / measured

    track_efficiency.unit = "ideal / measured"


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
