"""Stopping stops: Ctrl-C and SIGTERM in every configuration, and no worker outlives its build.

Each signal test runs a build in a subprocess (``stopping_harness``) and sends it
real signals; the tasks running then wait for a file the test writes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import tasks_for_tests as tt
from stopping_harness import STOPPING, STOPPING_NOW, assert_all_gone, gated_ids
from stardag.build import BuildStatus, build, build_sequential
from stardag.errors import BuildInterrupted

# -- the first signal: nothing new starts, the running tasks finish ----------------

N_GATED = 4


@pytest.mark.parametrize(("mode", "n_running", "signum", "group"), [
    ("sequential", 1, signal.SIGINT, False),
    ("sequential_aio", 1, signal.SIGINT, False),
    ("blocking", 1, signal.SIGINT, False),
    ("thread", 2, signal.SIGINT, False),
    ("process", 2, signal.SIGINT, True),  # a terminal's Ctrl-C reaches the workers too
    ("mixed", 2, signal.SIGINT, True),
    ("thread", 2, signal.SIGTERM, False),
    ("process", 2, signal.SIGTERM, False),  # its busy workers used to run on for ever
    ("process", 2, signal.SIGTERM, True),  # a service manager's SIGTERM to every process
], ids=lambda v: getattr(v, "name", str(v)))
def test_a_signal_stops_the_build_after_the_running_tasks_with_the_summary(
        scripted: Any, mode: str, n_running: int, signum: int, group: bool) -> None:
    """
    top ── Gated 0..3 (n_running of them running at the signal) ── leaf 100, leaf 101 (done first)
    """
    run = scripted(mode, N_GATED)
    run.wait_for_gated(n_running)
    workers = run.descendants()
    run.send(signum, group)
    run.wait_for_err(STOPPING)
    run.release()  # the running tasks end now; nothing else may start
    result = run.result()

    assert result == {"signal": signal.Signals(signum).name, "status": "interrupted", "n_discovered": 3 + N_GATED,
                      "n_succeeded": 2 + n_running, "n_failed": 0, "n_not_run": 1 + N_GATED - n_running,
                      "restored": True}
    started = gated_ids(run.root, "start")
    assert len(started) == n_running and gated_ids(run.root) == started  # they finished, and saved
    assert_all_gone(workers)


# -- the second signal: the running tasks are stopped too ---------------------------


@pytest.mark.parametrize(("mode", "n_running", "signum"), [
    ("sequential", 1, signal.SIGINT),
    ("blocking", 1, signal.SIGINT),
    ("thread", 2, signal.SIGINT),
    ("process", 2, signal.SIGINT),
    ("process", 2, signal.SIGTERM),
], ids=lambda v: getattr(v, "name", str(v)))
def test_a_second_signal_stops_the_running_tasks(scripted: Any, mode: str, n_running: int, signum: int) -> None:
    run = scripted(mode, N_GATED)
    run.wait_for_gated(n_running)
    workers = run.descendants()
    run.send(signum)
    run.wait_for_err(STOPPING)
    run.send(signum)
    run.wait_for_err(STOPPING_NOW)
    result = run.result()  # without a release: the gated tasks would wait 60 s

    assert result == {"signal": signal.Signals(signum).name, "status": "interrupted", "n_discovered": 3 + N_GATED,
                      "n_succeeded": 2, "n_failed": 0, "n_not_run": 1 + N_GATED, "restored": True}
    assert gated_ids(run.root) == []
    if mode == "process":
        assert len(workers) >= 2
        assert_all_gone(workers, timeout=5)  # well under the gated tasks' 60 s
    run.release()  # a task left running would save now: none may
    time.sleep(0.1)
    assert gated_ids(run.root) == [] and not any(Path(run.root).rglob("*.tmp-*"))


# -- SIGKILL of the build: its workers die with it --------------------------------


@pytest.mark.parametrize("start_method", ["fork", "forkserver", "spawn+watchdog"])
def test_workers_die_with_a_build_killed_by_sigkill(scripted: Any, start_method: str) -> None:
    """Two workers run gated tasks, a third is idle; the build is SIGKILLed: none survives."""
    run = scripted("process", 2, n_workers=3, start_method=start_method)
    run.wait_for_gated(2)
    processes = run.descendants()  # the workers, and forkserver and resource tracker if any
    assert len(processes) >= 3, [p.cmdline() for p in processes]
    run.send(signal.SIGKILL)
    run.proc.wait(timeout=10)
    assert_all_gone(processes)
    run.release()
    time.sleep(0.1)
    assert gated_ids(run.root) == []  # killed while running, not finished later


# -- in the test process: which handlers are in place, and when ----------------------


def test_handlers_are_the_builds_only_while_it_runs_and_only_in_the_main_thread(root: str) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    seen: dict[str, Any] = {}

    class Peek(tt.Leaf):
        def run(self) -> None:
            seen[self.mode] = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
            super().run()

        mode: str = ""

    build_sequential([Peek(mode="sequential")])
    build([Peek(mode="thread")])
    thread = threading.Thread(target=build, args=([Peek(mode="thread, not main")],))
    thread.start()
    thread.join()

    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    sigint, sigterm = seen["sequential"]
    assert sigint != before[0] and sigterm == before[1]  # SIGTERM: only with a pool
    assert seen["thread"][0] != before[0] and seen["thread"][1] != before[1]
    assert seen["thread, not main"] == before


def test_a_build_interrupted_is_a_keyboard_interrupt_not_an_exception(root: str) -> None:
    """``except Exception`` must not swallow a Ctrl-C; the summary rides on the exception."""

    class Interrupts(tt.Leaf):
        def run(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)  # the build's handler: stop after this task
            super().run()

    first, second = Interrupts(value=1), tt.Leaf(value=2)
    with pytest.raises(KeyboardInterrupt) as raised:
        try:
            build_sequential([first, second])
        except Exception:  # pragma: no cover - the point of the test
            pytest.fail("BuildInterrupted was caught as an Exception")
    error = raised.value
    assert isinstance(error, BuildInterrupted) and error.signal is signal.SIGINT
    summary = error.summary
    assert (summary.status, summary.n_succeeded, summary.n_not_run) == (BuildStatus.INTERRUPTED, 1, 1)
    assert first.complete() and not second.complete()
    assert "interrupted by SIGINT" in str(error) and "1 succeeded" in str(error)
    with pytest.raises(RuntimeError, match="build was interrupted"):
        summary.raise_for_status()


def test_ctrl_c_during_discovery_stops_at_once_with_nothing_run(root: str) -> None:
    """Nothing runs yet while the build walks requires(): the first Ctrl-C stops it where it is."""

    class InterruptsDiscovery(tt.Leaf):
        def requires(self) -> Any:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the interrupt lands here, long before this ends
            return ()

    others = [tt.Leaf(value=i) for i in range(3)]
    start = time.monotonic()
    with pytest.raises(BuildInterrupted) as raised:
        build([*others, InterruptsDiscovery(value=9)])
    assert time.monotonic() - start < 4
    summary = raised.value.summary
    assert (summary.status, summary.n_succeeded, summary.n_not_run) == (BuildStatus.INTERRUPTED, 0, 3)
    assert not any(leaf.complete() for leaf in others)
