"""Per-task build overhead of stardag, over the floor, for light tasks.

overhead = (build time - n_tasks * floor) / n_tasks, where the floor is one
task's work (``sum(range(100))``) plus one output write on the same storage,
measured in the same run. Shapes: fan-in (n-1 leaves, 1 root) and chain.

    python tools/overhead.py [--sizes 100,1000,10000,100000] [--storage memory,tmpfs]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmark suite's tasks and DAGs

from benchmarks import dags  # noqa: E402
from benchmarks.bench_scaling import run_floor  # noqa: E402
from benchmarks.common import RootPool, check_summary  # noqa: E402
from stardag import target_root  # noqa: E402
from stardag.build import (DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build,  # noqa: E402
                           build_sequential)


def _roots(storage: str) -> RootPool:
    """memory:// roots, or directories under the suite's root (tmpfs by default)."""
    return RootPool("memory" if storage == "memory" else "file")


def floor_us(storage: str, n: int = 2000) -> float:
    """Work plus one output write, per task, on ``storage`` (µs).

    Measured over as many tasks as the build it is compared with (up to 10,000),
    so both create the same share of new directories.
    """
    roots = _roots(storage)
    try:
        return run_floor(dags.light_family("fan_in", n, False), roots.fresh()) / n * 1e6
    finally:
        roots.clear()


def time_build(dag: dags.Dag, storage: str, configuration: str) -> float:
    roots = _roots(storage)
    root = roots.fresh()
    try:
        with target_root(root):
            gc.collect()
            start = time.perf_counter()
            if configuration == "sequential":
                summary = build_sequential(list(dag.roots))
            else:
                runner = HybridConcurrentTaskRunner(
                    execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="thread"),
                    max_thread_workers=2,
                )
                summary = build(list(dag.roots), task_runner=runner)
            elapsed = time.perf_counter() - start
    finally:
        roots.clear()
    check_summary(summary, dag.n_tasks, root)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000,100000")
    parser.add_argument("--storage", default="memory,tmpfs")
    parser.add_argument("--configurations", default="sequential,thread_pool")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'storage':8} {'shape':7} {'n':>7} {'config':12} {'floor µs':>9} {'build s':>9} {'overhead µs/task':>17}")
    for storage in args.storage.split(","):
        for shape in ("fan_in", "chain"):
            for n in sizes:
                dag = dags.light_family(shape, n, False)
                for configuration in args.configurations.split(","):
                    best = min(time_build(dag, storage, configuration) for _ in range(args.repeat))
                    floor = min(floor_us(storage, min(n, 10_000)) for _ in range(3))
                    overhead = (best * 1e6 - n * floor) / n
                    print(f"{storage:8} {shape:7} {n:>7} {configuration:12} {floor:9.1f} {best:9.4f} {overhead:17.1f}",
                          flush=True)


if __name__ == "__main__":
    main()
