"""Per-task build overhead of stardag, over the floor, for light tasks.

overhead = (build time - n_tasks * floor) / n_tasks, where the floor is one
task's work (``sum(range(100))``) plus one output write on the same storage,
measured in the same run. Shapes: fan-in (n-1 leaves, 1 root) and chain.

    python tools/overhead.py [--sizes 100,1000,10000,100000] [--storage memory,tmpfs]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time

from stardag import AutoTask, Task, target_root
from stardag.build import (DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build,
                           build_sequential)


class Light(AutoTask[int]):
    """A near-zero task: exposes the build's own cost."""

    task_namespace = "overhead"
    index: int
    deps: tuple[Task, ...] = ()

    def requires(self):
        return self.deps

    def run(self) -> None:
        self.output().save(sum(range(100)))


def fan_in(n: int) -> Light:
    return Light(index=n, deps=tuple(Light(index=i) for i in range(n - 1)))


def chain(n: int) -> Light:
    task = Light(index=0)
    for i in range(1, n):
        task = Light(index=i, deps=(task,))
    return task


def _root(storage: str, run: int) -> str:
    if storage == "memory":
        return f"memory://overhead-{os.getpid()}-{run}"
    base = "/dev/shm" if storage == "tmpfs" and os.path.isdir("/dev/shm") else None
    return tempfile.mkdtemp(prefix="stardag-overhead-", dir=base)


_runs = iter(range(10**9))


def floor_us(storage: str, n: int = 2000) -> float:
    """Work plus one output write, per task, on ``storage`` (µs).

    Measured over as many tasks as the build it is compared with (up to 10,000),
    so both create the same share of new directories.
    """
    tasks = [Light(index=i) for i in range(n)]
    root = _root(storage, next(_runs))
    with target_root(root):
        start = time.perf_counter()
        for task in tasks:
            task.output().save(sum(range(100)))
        elapsed = time.perf_counter() - start
    _cleanup(root)
    return elapsed / n * 1e6


def _cleanup(root: str) -> None:
    if not root.startswith("memory://"):
        shutil.rmtree(root, ignore_errors=True)


def time_build(dag: Light, n: int, storage: str, configuration: str) -> float:
    root = _root(storage, next(_runs))
    with target_root(root):
        gc.collect()
        start = time.perf_counter()
        if configuration == "sequential":
            summary = build_sequential([dag])
        else:
            runner = HybridConcurrentTaskRunner(
                execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="thread"),
                max_thread_workers=2,
            )
            summary = build([dag], task_runner=runner)
        elapsed = time.perf_counter() - start
    _cleanup(root)
    if summary.n_succeeded != n:
        raise RuntimeError(f"expected {n} tasks to run, {summary}")
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
        for shape, make in (("fan-in", fan_in), ("chain", chain)):
            for n in sizes:
                dag = make(n)
                for configuration in args.configurations.split(","):
                    best = min(time_build(dag, n, storage, configuration) for _ in range(args.repeat))
                    floor = min(floor_us(storage, min(n, 10_000)) for _ in range(3))
                    overhead = (best * 1e6 - n * floor) / n
                    print(f"{storage:8} {shape:7} {n:>7} {configuration:12} {floor:9.1f} {best:9.4f} {overhead:17.1f}",
                          flush=True)


if __name__ == "__main__":
    main()
