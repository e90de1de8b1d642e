"""Errors raised by stardag.

One base class, :class:`StardagError`; each leaf also subclasses the builtin a
caller would naturally catch (``ValueError``, ``TypeError``, ``RuntimeError``).
"""

from __future__ import annotations

__all__ = [
    "DependencyCycleError",
    "StardagError",
    "TargetError",
    "TaskDefinitionError",
    "TaskOutputMissingError",
    "TaskPicklingError",
    "WorkerDiedError",
]


class StardagError(Exception):
    """Base class of every error stardag raises on its own account."""


class TaskDefinitionError(StardagError, TypeError):
    """A task class cannot be built as defined (for example it has no ``run``)."""


class DependencyCycleError(StardagError, ValueError):
    """Tasks depend on each other in a cycle; ``cycle`` lists the task ids in order."""

    def __init__(self, message: str, cycle: list[str]):
        super().__init__(message)
        self.cycle = cycle


class TaskPicklingError(StardagError, TypeError):
    """A task could not be sent to (or its outcome back from) a worker process."""


class WorkerDiedError(StardagError, RuntimeError):
    """A worker process exited while it was running a task."""


class TargetError(StardagError, ValueError):
    """A target root or output cannot be used as asked."""


class TaskOutputMissingError(StardagError, FileNotFoundError):
    """A task's output is not there: after its ``run()`` returned, or when it is loaded."""
