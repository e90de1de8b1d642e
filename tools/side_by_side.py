"""stardag beside the Dask equivalent, in one process, interleaved: the ratios README.md and docs/dask.md cite.

``gil``: the CPU-bound scenarios (33-task fan-in of ~20-30 ms SHA-256 tasks,
heavy 4+1 of ~1 s tasks) built sequentially, on our thread pool with 1 to
``min(32, cpus + 4)`` threads, and with Dask's threaded scheduler
(``dask.threaded.get``, 4 threads) on a task dict calling the same ``run()``.
Reported: median wall time over the rounds and its ratio to sequential, the
process's CPU time, and its voluntary context switches (each a thread that
blocked: on the GIL, a queue or I/O; sequential has none).

``dask``: light tasks (``sum(range(100))`` + one JSON write) on one LocalCluster
of 2 worker processes, as fan-in and chain of 100, 1,000 and 10,000 tasks:
in a process of its own (the asv suite's, ``benchmarks/dask_cluster.py``):
our ``dask`` mode (``build``) against raw Dask distributed (a Client that runs
``client.get`` on a task dict doing the same work, then closes: what a build
on a standing cluster does too). Reported: median ms per task and the ratio,
and the bytes our mode shipped per task (the largest submission).

Each round runs every configuration once, in turn (A B C A B C ...), so both
sides of a ratio see the same load; every build starts from a fresh root.
The machine's load average is printed: on a shared machine, read the ratios,
not the seconds.

    python tools/side_by_side.py gil [--rounds 7] [--scenarios cpu,heavy]
    python tools/side_by_side.py dask [--rounds 5] [--sizes 100,1000,10000] [--shapes fan_in,chain]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmark suite's tasks and DAGs

from benchmarks import dags  # noqa: E402
from benchmarks.common import RootPool, check_summary  # noqa: E402
from stardag import target_root  # noqa: E402
from stardag.build import (DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build,  # noqa: E402
                           build_sequential)
from stardag.build._runner import available_cpus  # noqa: E402

DASK_WORKERS = 2


def _usage() -> tuple[float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_nvcsw


def _timed(run: Callable[[], Any]) -> tuple[float, float, int]:
    """(wall s, CPU s, voluntary context switches) of ``run()``."""
    cpu0, switches0 = _usage()
    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    cpu1, switches1 = _usage()
    return wall, cpu1 - cpu0, switches1 - switches0


def _run_task(task: Any, *deps: Any) -> None:
    task.run()


def gil_builders(dag: dags.Dag, thread_counts: list[int]) -> dict[str, Callable[[], Any]]:
    roots = list(dag.roots)

    def threads(n: int) -> Callable[[], Any]:
        runner = HybridConcurrentTaskRunner(
            execution_mode_selector=DefaultExecutionModeSelector("thread"), max_thread_workers=n)
        return lambda: build(roots, task_runner=runner)

    builders: dict[str, Callable[[], Any]] = {"sequential": lambda: build_sequential(roots)}
    builders.update({f"threads={n}": threads(n) for n in thread_counts})
    try:
        import dask.threaded
    except ImportError:
        return builders
    graph = {t.id: (_run_task, t, *(d.id for d in t.deps)) for t in dag.tasks}
    top = dag.tasks[-1].id
    builders["dask threaded (4)"] = lambda: dask.threaded.get(graph, top, num_workers=4)
    return builders


def run_gil(args: argparse.Namespace) -> None:
    from benchmarks import tasks

    default = min(32, available_cpus() + 4)
    counts = sorted({1, 2, 4, default})
    for scenario in args.scenarios.split(","):
        dag = dags.flat(tasks.CPUBoundTask) if scenario == "cpu" else dags.heavy(tasks.HeavyCPUTask)
        builders = gil_builders(dag, counts)
        samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in builders}
        for _ in range(args.rounds):
            for name, run in builders.items():
                roots = RootPool("file")
                root = roots.fresh()
                try:
                    with target_root(root):
                        samples[name].append(_timed(run))
                        if not dag.tasks[-1].complete():
                            raise RuntimeError(f"{name} did not build {scenario}")
                finally:
                    roots.clear()
        print(f"\n{scenario}: {dag.n_tasks} tasks, {args.rounds} rounds, load average {_load()}")
        base = statistics.median(s[0] for s in samples["sequential"])
        print(f"  {'configuration':20} {'wall s':>7} {'/ seq':>6} {'CPU s':>7} {'vol. switches':>14}")
        for name, rows in samples.items():
            wall = statistics.median(r[0] for r in rows)
            print(f"  {name:20} {wall:7.3f} {wall / base:6.3f} {statistics.median(r[1] for r in rows):7.3f} "
                  f"{statistics.median(r[2] for r in rows):14.0f}")


# -- dask ----------------------------------------------------------------------


def _raw_light(path: str, *deps: Any) -> int:
    """The light task's work without stardag: ``sum(range(100))`` saved as JSON."""
    value = sum(range(100))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f)
    return value


def raw_graph(dag: dags.Dag, root: str) -> tuple[dict[str, Any], str]:
    keys = [f"light-{i}" for i in range(dag.n_tasks)]
    graph = {keys[i]: (_raw_light, os.path.join(root, "raw", f"{i % 256:02x}", f"{i}.json"),
                       *(keys[d] for d in deps))
             for i, deps in enumerate(dag.deps)}
    return graph, keys[-1]


def run_dask(args: argparse.Namespace) -> None:
    import distributed

    from benchmarks import dask_cluster
    from stardag.build import _dask

    # The asv suite's cluster: a LocalCluster in a process of its own, so its
    # scheduler does not share this process's GIL with the driver (or with
    # raw Dask's client).
    address = dask_cluster.private_address(DASK_WORKERS)
    runner = HybridConcurrentTaskRunner(
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="dask"), dask_address=address)
    shipped: list[int] = []  # the largest task each build sent
    shutdown = _dask.DaskExecutor.shutdown

    def noting_shutdown(self: Any, *args: Any) -> None:
        shipped.append(self.max_task_bytes)
        shutdown(self, *args)

    _dask.DaskExecutor.shutdown = noting_shutdown  # type: ignore[method-assign]
    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # the cluster's shutdown chatter
    try:
        print(f"LocalCluster of {DASK_WORKERS} worker processes (1 thread each); load average {_load()}")
        print(f"  {'shape':7} {'n':>6} {'raw ms/task':>12} {'ours ms/task':>13} {'ours / raw':>11} "
              f"{'max bytes/task':>15}")
        for shape in args.shapes.split(","):
            for n in (int(s) for s in args.sizes.split(",")):
                dag = dags.light_family(shape, n, False)
                raw: list[float] = []
                ours: list[float] = []
                shipped.clear()
                for _ in range(args.rounds):
                    pool = RootPool("file")
                    try:
                        root = pool.fresh()
                        graph, top = raw_graph(dag, root)

                        def raw_build() -> None:
                            with distributed.Client(address, set_as_default=False) as client:
                                client.get(graph, top)

                        raw.append(_timed(raw_build)[0])
                        root = pool.fresh()
                        with target_root(root):
                            wall, _, _ = _timed(lambda: check_summary(
                                build(list(dag.roots), task_runner=runner), n, root))
                        ours.append(wall)
                    finally:
                        pool.clear()
                r, o = statistics.median(raw), statistics.median(ours)
                print(f"  {shape:7} {n:6} {r * 1e3 / n:12.2f} {o * 1e3 / n:13.2f} {o / r:11.2f} "
                      f"{max(shipped):15}", flush=True)
        print(f"load average at the end {_load()}")
    finally:
        _dask.DaskExecutor.shutdown = shutdown  # type: ignore[method-assign]
        dask_cluster.close_private()


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    gil = sub.add_parser("gil", help="thread pool vs sequential vs Dask threaded, CPU-bound")
    gil.add_argument("--rounds", type=int, default=7, help="rounds of every configuration, interleaved (default 7)")
    gil.add_argument("--scenarios", default="cpu,heavy", help="comma-separated: cpu, heavy (default both)")
    dask = sub.add_parser("dask", help="our dask mode vs raw Dask distributed, light tasks")
    dask.add_argument("--rounds", type=int, default=5, help="rounds of both sides, interleaved (default 5)")
    dask.add_argument("--sizes", default="100,1000,10000", help="comma-separated task counts (default 100,1000,10000)")
    dask.add_argument("--shapes", default="fan_in,chain", help="comma-separated: fan_in, chain (default both)")
    args = parser.parse_args()
    (run_gil if args.part == "gil" else run_dask)(args)


if __name__ == "__main__":
    main()
