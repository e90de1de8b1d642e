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


class SpinThenWait(AutoTask[int]):
    """Builds a request in Python for 15 ms (the GIL held), then waits 100 ms on I/O; logs its span."""

    task_namespace = "test_thread_pool"
    index: int

    def run(self) -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < 0.015:
            sum(range(200))
        time.sleep(0.1)
        self.output().save(self.index)
        SPANS.append((start, time.perf_counter()))


class Hash(AutoTask[int]):
    """SHA-256 of 1 MB buffers for 30 ms: C code that releases the GIL while it hashes; logs its span."""

    task_namespace = "test_thread_pool"
    index: int

    def run(self) -> None:
        import hashlib

        data = bytes(1 << 20)
        start = time.perf_counter()
        while time.perf_counter() - start < 0.03:
            hashlib.sha256(data).digest()
        self.output().save(self.index)
        SPANS.append((start, time.perf_counter()))


def test_tasks_that_compute_then_wait_overlap_their_waits(root: str, gates: list) -> None:
    """The first task holds the GIL long enough to look serial; over its whole run it mostly waited."""
    SPANS.clear()
    summary = build([SpinThenWait(index=i) for i in range(16)], task_runner=_runner(8))
    assert summary.n_succeeded == 16
    (gate,) = gates
    assert gate.verdicts() in ({"SpinThenWait": "free"}, {})
    # One at a time they would not overlap at all (16 x 115 ms); 8 threads wait side by side.
    assert _max_overlap(SPANS) >= 4, SPANS


def test_tasks_in_c_code_that_releases_the_gil_stay_free(root: str, gates: list) -> None:
    SPANS.clear()
    summary = build([Hash(index=i) for i in range(8)], task_runner=_runner(4))
    assert summary.n_succeeded == 8
    (gate,) = gates
    assert gate.verdicts() in ({"Hash": "free"}, {})
    assert _max_overlap(SPANS) >= 2, SPANS


# -- the gate alone ------------------------------------------------------------------


def _in_thread(target, *args):
    import threading

    thread = threading.Thread(target=target, args=args)
    thread.start()
    return thread


def _serial_gate(cls: type) -> tuple:
    """A gate that judged ``cls`` serial, and the (thread, release list) of a task it lets run."""
    from stardag.build import _gil

    released: list = []
    gate = _gil.GilGate(released.append)
    if not gate.enabled:
        pytest.skip("no per-thread CPU clock here: the gate lets every class run freely")
    gate._verdict[cls] = _gil.SERIAL
    gate.serial.add(cls)
    return gate, released


def test_a_serial_task_that_waits_frees_its_class_when_it_ends() -> None:
    """The task admitted waits 30 ms (no CPU): at its end its class is free, and what it held goes back."""
    gate, released = _serial_gate(SpinThenWait)
    outcome: list = []

    def task() -> None:
        assert gate.admit(SpinThenWait, "first")
        time.sleep(0.03)
        outcome.append(gate.finished(SpinThenWait))

    thread = _in_thread(task)
    while SpinThenWait not in gate._running:
        time.sleep(0.001)
    assert gate.hold(SpinThenWait, "second") and not gate.admit(SpinThenWait, "third")
    thread.join()
    assert outcome == [None]  # not the next held task: the pool's queue has them
    assert released == ["second", "third"]
    assert gate.verdicts() == {"SpinThenWait": "free"} and SpinThenWait in gate.free
    assert not gate.hold(SpinThenWait, "fourth") and gate.admit(SpinThenWait, "fourth")


def test_a_serial_task_that_computes_hands_its_worker_the_next_one() -> None:
    gate, released = _serial_gate(Spin)
    outcome: list = []

    def task() -> None:
        assert gate.admit(Spin, "first")
        start = time.perf_counter()
        while time.perf_counter() - start < 0.03:
            sum(range(200))
        outcome.append(gate.finished(Spin))

    thread = _in_thread(task)
    while Spin not in gate._running:
        time.sleep(0.001)
    assert gate.hold(Spin, "second")
    thread.join()
    assert outcome == ["second"] and released == []
    assert gate.verdicts() == {"Spin": "serial"}


def test_the_driver_frees_a_serial_class_whose_running_task_waits_long() -> None:
    """Others of its class wait: the review sees the running task has used no CPU, and frees them."""
    import threading

    gate, released = _serial_gate(SpinThenWait)
    go_on = threading.Event()

    def task() -> None:
        assert gate.admit(SpinThenWait, "first")
        go_on.wait(10)  # waits on I/O, as far as anyone can tell
        assert gate.finished(SpinThenWait) is None

    thread = _in_thread(task)
    while SpinThenWait not in gate._running:
        time.sleep(0.001)
    assert gate.review() is False  # nothing waits behind it: nothing to look at
    assert gate.hold(SpinThenWait, "second")
    time.sleep(0.03)
    try:
        assert gate.review() is False
        assert released == ["second"] and gate.verdicts() == {"SpinThenWait": "free"}
    finally:
        go_on.set()
        thread.join()


def test_a_free_threaded_python_serialises_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from stardag.build import _gil

    monkeypatch.setattr(_gil.sys, "_is_gil_enabled", lambda: False, raising=False)
    gate = _gil.GilGate(lambda item: None)
    assert not gate.enabled
    assert gate.admit(Spin, "a") and gate.admit(Spin, "b") and gate.finished(Spin) is None
