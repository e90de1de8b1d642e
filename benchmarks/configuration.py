"""Build configurations: the one place that says how each is run and how parallel it can be.

To add a configuration, add a ``Configuration`` to ``CONFIGURATIONS``: every
benchmark class takes its ``params`` from ``NAMES``.

``io_slots`` / ``cpu_slots`` say how many tasks of each kind can make progress at
once; the ideal makespan (benchmarks/ideal.py) uses them. Threads get the
machine's cores for CPU work although the GIL allows one: the ideal is the
physical limit, and the gap is what the configuration costs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

WORKERS = 4  # thread and process pool size, as in the reference measurements
ASYNC_WORKERS = 64  # async tasks in flight; wider than any DAG level here
DASK_WORKERS = 2  # LocalCluster worker processes, one thread each
# Suite budget: a light task costs 2-6 ms on Dask, as raw Dask's own (10,000
# would take 20-60 s per sample); a chain link adds the workers' round trip
# (~6 ms here). Tasks ship O(1) bytes however deep the DAG (docs/dask.md).
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


def _dask(run_dir: str | None = None) -> Callable[[Any], Any]:
    """Builds on a LocalCluster of ``DASK_WORKERS`` processes: the run's, or this process's own.

    Starting a cluster takes seconds: that happens here (in ``setup``), not in
    the timed builds, and once per run (benchmarks/dask_cluster.py). Each build
    connects to it, checks the target root and disconnects, as a build on a
    standing cluster does.
    """
    _import_build()
    try:
        from stardag.build import _dask  # noqa: F401
    except ImportError:
        raise NotImplementedError("this commit's stardag.build has no dask mode") from None
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise NotImplementedError("dask.distributed is not installed (pip install 'stardag[dask]')") from None
    from benchmarks import dask_cluster

    if run_dir is None:
        address = dask_cluster.private_address(DASK_WORKERS)
    else:
        address = dask_cluster.address_in(run_dir, DASK_WORKERS)
    return _hybrid("dask", dask_address=address)


def _sequential(run_dir: str | None = None) -> Callable[[Any], Any]:
    (build_sequential,) = _need(_import_build(), "build_sequential")
    return lambda roots: build_sequential(list(roots))


@dataclass(frozen=True)
class Configuration:
    """A named way to build: which task classes it uses and how to call the library."""

    name: str
    # (run directory or None) -> builder; raises NotImplementedError if this commit lacks it
    make_builder: Callable[..., Callable[[Any], Any]]
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
            lambda run_dir=None: _hybrid("thread", max_thread_workers=WORKERS),
            False, True, WORKERS, min(WORKERS, cores),
        ),
        Configuration(
            "process_pool",
            lambda run_dir=None: _hybrid("process", max_process_workers=WORKERS),
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
            lambda run_dir=None: _hybrid("blocking", max_async_workers=ASYNC_WORKERS),
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
