"""Building task DAGs: bottom-up, skipping what is complete, in four configurations.

``build`` / ``build_aio`` run a :class:`HybridConcurrentTaskRunner` (async tasks on
the event loop; sync tasks in a thread pool, a process pool or inline);
``build_sequential`` / ``build_sequential_aio`` run one task at a time in a
deterministic order, for debugging.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..registry import RegistryABC
from ._driver import Driver
from ._runner import DefaultExecutionModeSelector, HybridConcurrentTaskRunner, SequentialTaskRunner
from ._summary import BuildStatus, BuildSummary, FailMode, TaskFailure

__all__ = [
    "BuildStatus",
    "BuildSummary",
    "DefaultExecutionModeSelector",
    "FailMode",
    "HybridConcurrentTaskRunner",
    "SequentialTaskRunner",
    "TaskFailure",
    "build",
    "build_aio",
    "build_sequential",
    "build_sequential_aio",
]


def _refuse_running_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"{name}() cannot run inside a running event loop; use 'await {name}_aio(...)' instead"
    )


async def build_aio(
    tasks: Any,
    task_runner: HybridConcurrentTaskRunner | None = None,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    rebuild: Any = None,
) -> BuildSummary:
    """Build ``tasks`` (a task or a collection of tasks) and all they require.

    Args:
        tasks: the root tasks.
        task_runner: where tasks run (default: a thread-pool ``HybridConcurrentTaskRunner``).
        fail_mode: stop at the first failure, or build all that does not depend on one.
        rebuild: tasks to run again even if complete (their outputs are deleted first);
            tasks that depend on them are not re-run unless listed too.
    """
    runner = task_runner if task_runner is not None else HybridConcurrentTaskRunner()
    return await Driver(runner, fail_mode, rebuild=rebuild).run(tasks)


def build(
    tasks: Any,
    task_runner: HybridConcurrentTaskRunner | None = None,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    rebuild: Any = None,
) -> BuildSummary:
    """Build ``tasks`` and all they require; the sync face of :func:`build_aio`.

    Raises:
        RuntimeError: called inside a running event loop (use ``build_aio``).
    """
    _refuse_running_loop("build")
    runner = task_runner if task_runner is not None else HybridConcurrentTaskRunner()
    return asyncio.run(Driver(runner, fail_mode, owns_loop=True, rebuild=rebuild).run(tasks))


async def build_sequential_aio(
    tasks: Any,
    registry: RegistryABC | None = None,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    rebuild: Any = None,
) -> BuildSummary:
    """Build one task at a time; tasks with ``run_aio`` are awaited."""
    runner = SequentialTaskRunner(registry, prefer_aio=True)
    return await Driver(runner, fail_mode, rebuild=rebuild).run(tasks)


def build_sequential(
    tasks: Any,
    registry: RegistryABC | None = None,
    fail_mode: FailMode = FailMode.FAIL_FAST,
    rebuild: Any = None,
) -> BuildSummary:
    """Build one task at a time, in a deterministic order; ``run()`` is preferred."""
    _refuse_running_loop("build_sequential")
    runner = SequentialTaskRunner(registry, prefer_aio=False)
    return asyncio.run(Driver(runner, fail_mode, owns_loop=True, rebuild=rebuild).run(tasks))
