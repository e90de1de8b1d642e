"""Build configurations: which executor runs each task, and how many at once."""

from __future__ import annotations

import os
from typing import Callable

from ..registry import NoOpRegistry, RegistryABC
from ..task import Task, task_has_run, task_has_run_aio

__all__ = [
    "ASYNC",
    "BLOCKING",
    "DASK",
    "DefaultExecutionModeSelector",
    "HybridConcurrentTaskRunner",
    "PROCESS",
    "THREAD",
]

ASYNC, THREAD, PROCESS, BLOCKING, DASK = "async", "thread", "process", "blocking", "dask"
_SYNC_MODES = (THREAD, PROCESS, BLOCKING, DASK)


class DefaultExecutionModeSelector:
    """Tasks with ``run_aio`` go to the event loop; sync-only tasks to ``sync_run_default``."""

    def __init__(self, sync_run_default: str = THREAD):
        if sync_run_default not in _SYNC_MODES:
            raise ValueError(
                f"unknown sync_run_default {sync_run_default!r}; use one of {', '.join(map(repr, _SYNC_MODES))}"
            )
        if sync_run_default == DASK:
            from ._dask import require_distributed  # imports no dask

            require_distributed()
        self.sync_run_default = sync_run_default

    def __call__(self, task: Task) -> str:
        cls = type(task)
        if task_has_run_aio(cls):
            return ASYNC
        return self.sync_run_default

    def may_use(self, mode: str) -> bool:
        return mode == ASYNC or mode == self.sync_run_default

    def __repr__(self) -> str:
        return f"DefaultExecutionModeSelector(sync_run_default={self.sync_run_default!r})"


class _SequentialSelector:
    """One task at a time: ``run()`` inline, or ``run_aio()`` awaited when preferred or alone."""

    def __init__(self, prefer_aio: bool):
        self.prefer_aio = prefer_aio

    def __call__(self, task: Task) -> str:
        cls = type(task)
        if task_has_run_aio(cls) and (self.prefer_aio or not task_has_run(cls)):
            return ASYNC
        return BLOCKING

    def may_use(self, mode: str) -> bool:
        return mode in (ASYNC, BLOCKING)


def _check_workers(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class HybridConcurrentTaskRunner:
    """Runs async tasks on the event loop and sync tasks in a thread pool, process pool or inline.

    Args:
        registry: told about the build and each task (default ``NoOpRegistry``).
        execution_mode_selector: maps a task to ``"async"``, ``"thread"``, ``"process"``
            or ``"blocking"`` (default ``DefaultExecutionModeSelector()``).
        max_async_workers: async tasks in flight at once (default 64).
        max_thread_workers: thread pool size (default ``min(32, cpus + 4)``).
        max_process_workers: process pool size (default: the cpus this process may use).
        process_start_method: ``"fork"``, ``"forkserver"`` or ``"spawn"``; default ``fork``
            where available and no other thread runs, else the platform default.
        dask_address: the Dask scheduler ``"dask"`` mode submits to; default: a
            ``LocalCluster`` started for the build and closed after.
        dask_n_workers: worker processes of that LocalCluster (default: the cpus).

    Raises:
        ValueError: a worker count below 1, an unknown start method, or a dask_address not a str.
    """

    max_in_flight: int | None = None

    def __init__(
        self,
        registry: RegistryABC | None = None,
        execution_mode_selector: Callable[[Task], str] | None = None,
        max_async_workers: int | None = None,
        max_thread_workers: int | None = None,
        max_process_workers: int | None = None,
        process_start_method: str | None = None,
        dask_address: str | None = None,
        dask_n_workers: int | None = None,
    ):
        if registry is not None and not isinstance(registry, RegistryABC):
            raise TypeError(f"registry must be a RegistryABC, got {registry!r}")
        self.registry = registry if registry is not None else NoOpRegistry()
        self.execution_mode_selector = execution_mode_selector or DefaultExecutionModeSelector()
        n_cpus = available_cpus()
        self.max_async_workers = _check_workers("max_async_workers", max_async_workers, 64)
        self.max_thread_workers = _check_workers("max_thread_workers", max_thread_workers, min(32, n_cpus + 4))
        self.max_process_workers = _check_workers("max_process_workers", max_process_workers, n_cpus)
        if process_start_method not in (None, "fork", "forkserver", "spawn"):
            raise ValueError(
                f"unknown process_start_method {process_start_method!r}; use 'fork', 'forkserver' or 'spawn'"
            )
        self.process_start_method = process_start_method
        if dask_address is not None and not isinstance(dask_address, str):
            raise ValueError(f"dask_address must be a str like 'tcp://host:8786', got {dask_address!r}")
        self.dask_address = dask_address
        self.dask_n_workers = _check_workers("dask_n_workers", dask_n_workers, n_cpus)

    def mode(self, task: Task) -> str:
        mode = self.execution_mode_selector(task)
        if mode not in (ASYNC, THREAD, PROCESS, BLOCKING, DASK):
            raise ValueError(
                f"execution mode selector returned {mode!r} for task {task!r}; "
                "expected 'async', 'thread', 'process', 'blocking' or 'dask'"
            )
        return mode

    def may_use(self, mode: str) -> bool:
        """Whether the selector is known to choose ``mode`` for some tasks."""
        may_use = getattr(self.execution_mode_selector, "may_use", None)
        return may_use is not None and may_use(mode)

    def capacity(self, mode: str) -> int:
        if mode == ASYNC:
            return self.max_async_workers
        if mode == THREAD:
            return self.max_thread_workers
        if mode == PROCESS:
            return self.max_process_workers
        return 1

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(execution_mode_selector={self.execution_mode_selector!r}, "
            f"max_async_workers={self.max_async_workers}, max_thread_workers={self.max_thread_workers}, "
            f"max_process_workers={self.max_process_workers})"
        )


class SequentialTaskRunner(HybridConcurrentTaskRunner):
    """One task at a time, in a deterministic order (for debugging)."""

    max_in_flight = 1

    def __init__(self, registry: RegistryABC | None = None, prefer_aio: bool = False):
        super().__init__(registry=registry, execution_mode_selector=_SequentialSelector(prefer_aio),
                         max_async_workers=1)


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware where the platform tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
