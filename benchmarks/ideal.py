"""The ideal makespan of a DAG: what a build with zero overhead would take.

Every task of a scenario does the same work (``unit`` seconds), so the best
schedule on ``slots`` parallel workers is Hu's: at each step run the ready tasks
farthest from the end of the graph. It is optimal for in-trees such as ours, and
a lower bound for any DAG. With one slot it is the total work; with unlimited
slots it is the critical path.

The work of one task is known for sleeps, measured for hashing (the SHA-256
speed at hand), and for light and file work taken as the floor: the tasks'
``run()`` called one after another in a plain loop, with no scheduler.
"""

from __future__ import annotations

import heapq
import inspect
import time
import timeit
from typing import Any, Sequence


def ideal_steps(deps: Sequence[Sequence[int]], slots: int) -> int:
    """Unit-time steps of Hu's schedule; ``deps`` are in dependency order."""
    n = len(deps)
    dependents: list[list[int]] = [[] for _ in range(n)]
    pending = [len(d) for d in deps]
    for i, ds in enumerate(deps):
        for d in ds:
            dependents[d].append(i)
    level = [1] * n  # tasks on the longest path from i to the end, i included
    for i in range(n - 1, -1, -1):
        if dependents[i]:
            level[i] = 1 + max(level[j] for j in dependents[i])
    ready = [(-level[i], i) for i in range(n) if pending[i] == 0]
    heapq.heapify(ready)
    steps = done = 0
    while done < n:
        if not ready:
            raise ValueError("deps contain a cycle or an index out of order")
        running = [heapq.heappop(ready)[1] for _ in range(min(slots, len(ready)))]
        steps += 1
        done += len(running)
        for i in running:
            for j in dependents[i]:
                pending[j] -= 1
                if pending[j] == 0:
                    heapq.heappush(ready, (-level[j], j))
    return steps


def ideal_makespan(deps: Sequence[Sequence[int]], unit: float, slots: int) -> float:
    return ideal_steps(deps, slots) * unit


def seconds_per_sha256() -> float:
    """One SHA-256 round of the CPU workloads on this machine, now (best of 3 x 100k).

    Measured afresh each time (~70 ms): on a shared machine the speed of a
    core drifts with the load, and the ideal should use the speed at hand.
    """
    from benchmarks.tasks import CPU_ITERATIONS, sha256_chain

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        sha256_chain(CPU_ITERATIONS)
        best = min(best, time.perf_counter() - start)
    return best / CPU_ITERATIONS


def run_floor(dag: Any, root: str) -> float:
    """Seconds to call every task's ``run()`` in dependency order under ``root``."""
    from stardag.target import target_root

    with target_root(root):
        start = timeit.default_timer()
        for task in dag.tasks:
            task.run()
        return timeit.default_timer() - start


def floor_seconds_per_task(dag: Any, repeat: int = 5) -> float:
    """One task's work on this machine, now: its ``run()`` with no scheduler (best of ``repeat``).

    Tasks whose ``run()`` yields dynamic dependencies are left out: a generator
    does nothing until a build drives it. Each round writes under a fresh
    root of the benchmark storage, removed afterwards.
    """
    from benchmarks.common import RootPool
    from benchmarks.dags import Dag

    plain = tuple(t for t in dag.tasks if not inspect.isgeneratorfunction(type(t).run))
    if not plain:
        raise ValueError(f"DAG {dag.name!r} has no task whose run() does the work itself")
    sub = Dag(dag.name, (), plain, tuple(() for _ in plain))
    roots = RootPool("file")
    try:
        return min(run_floor(sub, roots.fresh()) for _ in range(repeat)) / len(plain)
    finally:
        roots.clear()
