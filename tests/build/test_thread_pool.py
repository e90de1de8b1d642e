"""The thread pool's hand-offs: the driver is not woken once per task.

Each wake-up of the driver takes the GIL from the worker threads and gives it
back, which on CPU-bound tasks cost more than anything else the pool does. The
outcome of a task whose worker goes straight on to a queued task waits until
the queue runs dry (or something goes wrong).
"""

from __future__ import annotations

import time

import pytest

from stardag import AutoTask, Task
from stardag.build import DefaultExecutionModeSelector, FailMode, HybridConcurrentTaskRunner, build
from stardag.build import _driver


class Nap(AutoTask[int]):
    """Sleeps 2 ms (the GIL is free meanwhile, so the driver refills the queue in time)."""

    task_namespace = "test_thread_pool"
    index: int
    deps: tuple[Task, ...] = ()
    fail: bool = False

    def requires(self):
        return self.deps

    def run(self) -> None:
        time.sleep(0.002)
        if self.fail:
            raise ValueError(f"task {self.index} fails")
        self.output().save(self.index)


def _runner(n_workers: int) -> HybridConcurrentTaskRunner:
    return HybridConcurrentTaskRunner(
        execution_mode_selector=DefaultExecutionModeSelector("thread"), max_thread_workers=n_workers
    )


@pytest.fixture
def rings(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The ``urgent`` flag of every outcome a worker thread posts."""
    posted: list[bool] = []
    post = _driver._Inbox.post_threadsafe

    def spy(self, outcome, urgent=True):
        posted.append(urgent)
        post(self, outcome, urgent)

    monkeypatch.setattr(_driver._Inbox, "post_threadsafe", spy)
    return posted


@pytest.mark.parametrize("n_workers", [1, 4])
def test_a_fan_in_wakes_the_driver_once_per_queue_not_per_task(root: str, rings: list[bool],
                                                              n_workers: int) -> None:
    leaves = tuple(Nap(index=i) for i in range(60))
    summary = build([Nap(index=60, deps=leaves)], task_runner=_runner(n_workers))
    assert summary.n_succeeded == 61
    assert len(rings) == 61
    # One queue holds at least 8 tasks ahead: ~61 / 8 urgent outcomes, plus the
    # ones of workers that found the queue empty (at the end, or while the driver refilled it).
    assert sum(rings) <= 61 // 3, rings


def test_a_failure_is_urgent(root: str, rings: list[bool]) -> None:
    leaves = tuple(Nap(index=i, fail=i == 3) for i in range(30))
    summary = build([Nap(index=30, deps=leaves)], task_runner=_runner(1), fail_mode=FailMode.FAIL_FAST)
    assert summary.n_failed == 1
    assert rings[3], "the failed task's outcome did not wake the driver"
    # Fail-fast: the driver stops the queue at once; at most the task the worker
    # had taken (and one more, if the driver was slow to get the GIL) still runs.
    assert summary.n_succeeded <= 5
    assert summary.n_succeeded + summary.n_not_run + summary.n_failed + summary.n_upstream_failed == 31


class Spin(AutoTask[int]):
    """Runs Python code for ``seconds`` without releasing the GIL; logs when it started and ended."""

    task_namespace = "test_thread_pool"
    index: int
    seconds: float = 0.03

    def run(self) -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < self.seconds:
            sum(range(200))
        self.output().save(self.index)
        SPANS.append((start, time.perf_counter()))


SPANS: list[tuple[float, float]] = []


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


@pytest.fixture
def gates(monkeypatch: pytest.MonkeyPatch) -> list:
    """The GIL gate of every thread pool built."""
    from stardag.build import _executors

    found = []
    init = _executors.ThreadExecutor.__init__

    def keep(self, *args, **kwargs):
        init(self, *args, **kwargs)
        found.append(self.gate)

    monkeypatch.setattr(_executors.ThreadExecutor, "__init__", keep)
    return found


def test_tasks_that_hold_the_gil_run_one_at_a_time(root: str, gates: list) -> None:
    SPANS.clear()
    summary = build([Spin(index=i) for i in range(8)], task_runner=_runner(4))
    assert summary.n_succeeded == 8
    (gate,) = gates
    if not gate.enabled:  # no per-thread CPU clock on this platform: the pool runs them as before
        return
    # Side by side they would only take turns at the GIL, each turn a hand-off between threads.
    assert gate.verdicts() == {"Spin": "serial"}
    assert _max_overlap(SPANS) == 1, SPANS


def test_tasks_that_wait_run_side_by_side(root: str, gates: list) -> None:
    summary = build([Nap(index=300 + i) for i in range(8)], task_runner=_runner(4))
    assert summary.n_succeeded == 8
    assert gates[0].verdicts() in ({"Nap": "free"}, {})
