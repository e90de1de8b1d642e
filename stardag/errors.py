"""Errors raised by stardag.

One base class, :class:`StardagError`; each leaf also subclasses the builtin a
caller would naturally catch (``ValueError``, ``TypeError``, ``RuntimeError``).
The one exception is :class:`BuildInterrupted`: a ``KeyboardInterrupt``, so that
``except Exception`` never swallows a Ctrl-C.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .build import BuildSummary

__all__ = [
    "BuildInterrupted",
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


class BuildInterrupted(KeyboardInterrupt):
    """A build stopped by Ctrl-C (SIGINT) or SIGTERM; ``summary`` says what finished.

    ``signal`` is the signal that stopped it. Uncaught, it ends the program as
    Ctrl-C does.
    """

    def __init__(self, summary: BuildSummary, signum: int = signal.SIGINT):
        super().__init__(summary, signum)
        self.summary = summary
        self.signal = signal.Signals(signum)

    def __str__(self) -> str:
        return f"build interrupted by {self.signal.name}: {self.summary}"
