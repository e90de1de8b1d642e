"""The dask configuration against the process pool, both with 2 workers, in one run.

Heavy: the 4+1 DAG of ~1 s SHA-256 tasks; the ideal for 2 workers is 3 t,
where t is one task's time measured alone here; on a shared, noisy machine the
tasks run slower than alone, so each build is also compared with the ideal from
the durations its tasks reported (the build's own cost, without the noise). Light: a fan-in of ``--n`` near-zero
tasks; per-task overhead = (build time - n * floor) / n, where the floor is one
task's work plus one output write on the same storage. Dask builds connect to
one LocalCluster started once (its start-up is reported, not timed); the
connection, the root check and the close are part of every timed build.
Configurations alternate, every build starts from a fresh root.

    python tools/dask_overhead.py [--n 1000] [--repeat 5] [--skip-heavy]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmark suite's tasks and DAGs

from benchmarks import dags  # noqa: E402
from benchmarks.bench_scaling import run_floor  # noqa: E402
from benchmarks.common import RootPool, check_summary  # noqa: E402
from benchmarks.tasks import HEAVY_ITERATIONS, LightTask, sha256_chain  # noqa: E402
from stardag import AutoTask, Task, target_root  # noqa: E402
from stardag.build import DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build  # noqa: E402

N_WORKERS = 2


class Heavy(AutoTask[dict]):
    """~1 s of hashing; saves how long its work took, for the ideal under this run's load."""

    task_namespace = "dask_overhead"
    index: int
    deps: tuple[Task, ...] = ()

    def requires(self):
        return self.deps

    def run(self) -> None:
        start = time.perf_counter()
        digest = sha256_chain(HEAVY_ITERATIONS)
        self.output().save({"digest": digest, "seconds": time.perf_counter() - start})


def runner(config: str, address: str) -> HybridConcurrentTaskRunner:
    if config == "dask":
        return HybridConcurrentTaskRunner(
            execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="dask"),
            dask_address=address,
        )
    return HybridConcurrentTaskRunner(
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="process"),
        max_process_workers=N_WORKERS,
    )


def time_build(dag: dags.Dag, config: str, address: str, ideal: list[float] | None = None) -> float:
    """Seconds for one build from a fresh root; appends the heavy DAG's ideal to ``ideal``."""
    roots = RootPool("file")
    root = roots.fresh()
    try:
        with target_root(root):
            task_runner = runner(config, address)
            start = time.perf_counter()
            summary = build(list(dag.roots), task_runner=task_runner)
            elapsed = time.perf_counter() - start
            if ideal is not None:
                ideal.append(ideal_from_durations(dag.roots[0]))
    finally:
        roots.clear()
    check_summary(summary, dag.n_tasks, root)
    return elapsed


def ideal_from_durations(top: Task) -> float:
    """The 4+1 DAG's best makespan on 2 workers given the durations its tasks took."""
    leaves = [dep.load()["seconds"] for dep in top.deps]
    best = min(
        max(sum(t for i, t in enumerate(leaves) if mask >> i & 1),
            sum(t for i, t in enumerate(leaves) if not mask >> i & 1))
        for mask in range(2 ** len(leaves))
    )
    return best + top.load()["seconds"]


def floor_us(n: int = 2000) -> float:
    roots = RootPool("file")
    try:
        return run_floor(dags.fan_in(LightTask, n), roots.fresh()) / n * 1e6
    finally:
        roots.clear()


def one_heavy_task_s() -> float:
    start = time.perf_counter()
    sha256_chain(HEAVY_ITERATIONS)
    return time.perf_counter() - start


def _summary(times: list[float]) -> str:
    return f"min {min(times):.3f}  median {statistics.median(times):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="light fan-in size")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-heavy", action="store_true")
    args = parser.parse_args()

    from stardag.build._dask import local_cluster

    start = time.perf_counter()
    cluster = local_cluster(N_WORKERS)  # as a build without a scheduler address starts it
    print(f"LocalCluster of {N_WORKERS} worker processes started in {time.perf_counter() - start:.2f} s "
          "(not timed below)")
    address = cluster.scheduler_address
    configs = ("process_pool", "dask")
    try:
        if not args.skip_heavy:
            dag = dags.heavy(Heavy)
            times: dict[str, list[float]] = {c: [] for c in configs}
            ideals: dict[str, list[float]] = {c: [] for c in configs}
            singles = []
            for _ in range(args.repeat):
                singles.append(one_heavy_task_s())
                for config in configs:
                    times[config].append(time_build(dag, config, address, ideals[config]))
            t = statistics.median(singles)
            print(f"heavy 4+1: one task alone t = {t:.3f} s (median of {len(singles)}), ideal 3 t = {3 * t:.3f} s")
            for config in configs:
                best, mid = min(times[config]), statistics.median(times[config])
                ratios = [x / i for x, i in zip(times[config], ideals[config])]
                print(f"  {config:12} {_summary(times[config])} s   / 3 t: median {mid / (3 * t):.3f} "
                      f"min {best / (3 * t):.3f}   / ideal from the tasks' own durations: median "
                      f"{statistics.median(ratios):.3f} min {min(ratios):.3f}")
        n = args.n
        dag = dags.fan_in(LightTask, n)
        times = {c: [] for c in configs}
        floors = []
        for _ in range(args.repeat):
            floors.append(floor_us())
            for config in configs:
                times[config].append(time_build(dag, config, address))
        floor = statistics.median(floors)
        print(f"light fan-in of {n}: floor (work + one write) {floor:.1f} µs/task")
        for config in configs:
            per = [(x * 1e6 - n * floor) / n for x in times[config]]
            print(f"  {config:12} build {_summary(times[config])} s   overhead µs/task: "
                  f"min {min(per):.0f}  median {statistics.median(per):.0f}")
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
