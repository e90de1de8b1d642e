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
