"""What a build reports: its status, counts and failures."""

from __future__ import annotations

import dataclasses
import enum

__all__ = ["BuildStatus", "BuildSummary", "FailMode", "TaskFailure"]


class FailMode(enum.Enum):
    """What a build does after a task fails."""

    FAIL_FAST = "fail_fast"  # start nothing new; let running tasks finish
    CONTINUE = "continue"  # build everything not downstream of a failure


class BuildStatus(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    INTERRUPTED = "interrupted"  # stopped by Ctrl-C or SIGTERM (see BuildInterrupted)


@dataclasses.dataclass(frozen=True)
class TaskFailure:
    """One failed task: its id, a short description, the error and its traceback."""

    task_id: str
    task: str
    error: BaseException
    traceback: str

    def __str__(self) -> str:
        return f"{self.task} [{self.task_id}]: {type(self.error).__name__}: {self.error}"


@dataclasses.dataclass(frozen=True)
class BuildSummary:
    """Counts and failures of one build.

    ``n_discovered`` counts every distinct task reached from the roots;
    ``n_previously_complete`` those skipped because their output existed;
    ``n_upstream_failed`` those not run because a dependency failed;
    ``n_not_run`` those left unfinished when the build stopped early (after a
    failure under fail-fast, or interrupted), including tasks stopped while running.
    """

    status: BuildStatus
    n_discovered: int
    n_previously_complete: int
    n_succeeded: int
    n_failed: int
    n_upstream_failed: int
    n_not_run: int
    failures: tuple[TaskFailure, ...]
    duration_s: float

    def raise_for_status(self) -> None:
        """Raise the first task's error (chained) when the build did not succeed."""
        if self.status is BuildStatus.SUCCESS:
            return
        lines = "".join(f"\n  {failure}" for failure in self.failures)
        how = "was interrupted" if self.status is BuildStatus.INTERRUPTED else "failed"
        message = (
            f"build {how}: {self.n_failed} failed, {self.n_upstream_failed} not run because a "
            f"dependency failed, {self.n_not_run} not run because the build stopped early{lines}"
        )
        cause = self.failures[0].error if self.failures else None
        raise RuntimeError(message) from cause

    def __str__(self) -> str:
        return (
            f"{self.status.value}: {self.n_discovered} discovered, {self.n_previously_complete} "
            f"already complete, {self.n_succeeded} succeeded, {self.n_failed} failed, "
            f"{self.n_upstream_failed} upstream failed, {self.n_not_run} not run "
            f"in {self.duration_s:.3f}s"
        )
