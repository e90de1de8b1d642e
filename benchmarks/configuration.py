"""Build configurations: the one place that says how each is run and how parallel it can be.

To add a configuration, add a ``Configuration`` to ``CONFIGURATIONS``: every
benchmark class takes its ``params`` from ``NAMES``.

``io_slots`` / ``cpu_slots`` say how many tasks of each kind can make progress at
once; the ideal makespan (benchmarks/ideal.py) uses them. Threads get the
machine's cores for CPU work although the GIL allows one: the ideal is the
physical limit, and the gap is what the configuration costs.
"""

from __future__ import annotations

import atexit
import importlib
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable

WORKERS = 4  # thread and process pool size, as in the reference measurements
ASYNC_WORKERS = 64  # async tasks in flight; wider than any DAG level here
DASK_WORKERS = 2  # LocalCluster worker processes, one thread each
# Suite budget: ~3 ms per light task on Dask (10,000 would take a minute per
# sample), and a chain is a round trip per link plus its ancestry per task.
DASK_MAX_LIGHT_TASKS = 1_000
DASK_MAX_LIGHT_CHAIN = 100


def n_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _import_build() -> Any:
    """``stardag.build``, or NotImplementedError naming what this commit lacks."""
    try:
        import stardag.build as build_module
    except ImportError as err:
        raise NotImplementedError(f"this commit has no stardag.build ({err})") from None
    return build_module


def _need(module: Any, *names: str) -> list[Any]:
    missing = [n for n in names if not hasattr(module, n)]
    if missing:
        raise NotImplementedError(f"this commit's stardag.build lacks {', '.join(missing)}")
    return [getattr(module, n) for n in names]


def _hybrid(sync_mode: str, **workers: int) -> Callable[[Any], Any]:
    b = _import_build()
    build, runner_cls, selector_cls = _need(
        b, "build", "HybridConcurrentTaskRunner", "DefaultExecutionModeSelector"
    )
    try:
        from stardag.registry import NoOpRegistry
    except ImportError as err:
        raise NotImplementedError(f"this commit has no stardag.registry ({err})") from None

    def run(roots: Any) -> Any:
        runner = runner_cls(
            registry=NoOpRegistry(),
            execution_mode_selector=selector_cls(sync_run_default=sync_mode),
            **workers,
        )
        return build(list(roots), task_runner=runner)

    return run


# A LocalCluster in a child process: its threads would make a process pool in
# this process give up fork. It closes when this process closes the pipe or dies.
_CLUSTER_SCRIPT = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark process closes it
sys.path.insert(0, sys.argv[1])  # the workers (spawned) import the benchmark tasks from there
try:  # the LocalCluster the library starts for a build without a scheduler address
    from stardag.build._dask import local_cluster
except ImportError:  # a commit before local_cluster()
    from distributed import LocalCluster
    def local_cluster(n):
        return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                            scheduler_kwargs={"dashboard_address": ":0"})
cluster = local_cluster(int(sys.argv[2]))
print(cluster.scheduler_address, flush=True)
sys.stdin.read()
cluster.close()
"""
_dask_address: str | None = None
_dask_close: Callable[[], None] | None = None


def close_dask_cluster() -> None:
    """Close the benchmark's LocalCluster, if one was started (asv: at exit; tests: at teardown)."""
    global _dask_address, _dask_close
    if _dask_close is not None:
        close, _dask_close, _dask_address = _dask_close, None, None
        atexit.unregister(close)
        close()


def _dask() -> Callable[[Any], Any]:
    """Builds on a LocalCluster of ``DASK_WORKERS`` processes, started once per benchmark process.

    Starting a cluster takes seconds: that happens here (in ``setup``), not in
    the timed builds. Each build connects to it, checks the target root and
    disconnects, as a build on a standing cluster does.
    """
    global _dask_address, _dask_close
    _import_build()
    try:
        from stardag.build import _dask  # noqa: F401
    except ImportError:
        raise NotImplementedError("this commit's stardag.build has no dask mode") from None
    try:
        import distributed
    except ImportError:
        raise NotImplementedError("dask.distributed is not installed (pip install 'stardag[dask]')") from None
    if _dask_address is None:
        # asv imports this package through a meta-path hook, not sys.path.
        parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        proc = subprocess.Popen([sys.executable, "-c", _CLUSTER_SCRIPT, parent, str(DASK_WORKERS)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        address = proc.stdout.readline().strip()
        if not address:
            proc.kill()
            raise RuntimeError("the benchmark's Dask LocalCluster did not start (see stderr)")

        def close() -> None:
            proc.stdin.close()
            proc.wait(timeout=30)

        atexit.register(close)
        _dask_close = close
        # The workers import the task modules now, not in the first timed build.
        with distributed.Client(address, set_as_default=False) as client:
            client.run(importlib.import_module, "benchmarks.tasks")
        _dask_address = address
    return _hybrid("dask", dask_address=_dask_address)


def _sequential() -> Callable[[Any], Any]:
    (build_sequential,) = _need(_import_build(), "build_sequential")
    return lambda roots: build_sequential(list(roots))


@dataclass(frozen=True)
class Configuration:
    """A named way to build: which task classes it uses and how to call the library."""

    name: str
    make_builder: Callable[[], Callable[[Any], Any]]  # raises NotImplementedError if missing
    async_tasks: bool  # use the Async* task classes (run_aio on the event loop)
    in_process: bool  # tasks run in this process: in-memory targets work
    io_slots: int
    cpu_slots: int
    max_light_tasks: int | None = None  # larger light DAGs skip (suite budget)
    max_light_chain: int | None = None  # longer light chains skip (suite budget)


def _configurations() -> tuple[Configuration, ...]:
    cores = n_cores()
    return (
        Configuration("sequential", _sequential, False, True, 1, 1),
        Configuration(
            "thread_pool",
            lambda: _hybrid("thread", max_thread_workers=WORKERS),
            False, True, WORKERS, min(WORKERS, cores),
        ),
        Configuration(
            "process_pool",
            lambda: _hybrid("process", max_process_workers=WORKERS),
            False, False, WORKERS, min(WORKERS, cores),
        ),
        Configuration(
            "dask",
            _dask,
            False, False, DASK_WORKERS, min(DASK_WORKERS, cores),
            max_light_tasks=DASK_MAX_LIGHT_TASKS, max_light_chain=DASK_MAX_LIGHT_CHAIN,
        ),
        Configuration(
            "async",
            lambda: _hybrid("blocking", max_async_workers=ASYNC_WORKERS),
            True, True, ASYNC_WORKERS, 1,
        ),
    )


CONFIGURATIONS = {c.name: c for c in _configurations()}
NAMES = list(CONFIGURATIONS)


def get(name: str) -> Configuration:
    try:
        return CONFIGURATIONS[name]
    except KeyError:
        raise ValueError(f"unknown configuration {name!r}; use one of {', '.join(NAMES)}") from None
