"""Registries: hooks told about a build and each of its tasks.

The driver calls them from the build's own thread, never from a worker.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .build._summary import BuildSummary
    from .task import Task

__all__ = ["NoOpRegistry", "RegistryABC"]


class RegistryABC(abc.ABC):
    """Receives build and task lifecycle events."""

    @abc.abstractmethod
    def build_start(self, root_tasks: list[Task]) -> None: ...

    @abc.abstractmethod
    def build_complete(self, summary: BuildSummary) -> None: ...

    @abc.abstractmethod
    def task_start(self, task: Task) -> None: ...

    @abc.abstractmethod
    def task_complete(self, task: Task) -> None: ...

    @abc.abstractmethod
    def task_fail(self, task: Task, error: BaseException | Any) -> None: ...


class NoOpRegistry(RegistryABC):
    """Records nothing."""

    def build_start(self, root_tasks: list[Task]) -> None:
        pass

    def build_complete(self, summary: BuildSummary) -> None:
        pass

    def task_start(self, task: Task) -> None:
        pass

    def task_complete(self, task: Task) -> None:
        pass

    def task_fail(self, task: Task, error: BaseException | Any) -> None:
        pass
