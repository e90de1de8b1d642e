"""Builds stopped by real signals, in a subprocess (conftest's ``scripted`` fixture starts them).

The script builds ``top ── Gated 0..n-1 ── leaf 100, leaf 101``: the two quick
leaves finish first, then the gated tasks wait for ``<root>/release``, so a
test decides when the running tasks end and never races a sleep. The script
prints, as JSON, the summary it got (on ``BuildInterrupted``, or returned), and
whether the build put the signal handlers back.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

import tasks_for_tests as tt
from conftest import alive, subprocess_env

_SCRIPT = '''
import asyncio, json, logging, signal, sys
import tasks_for_tests as tt
from stardag.build import (DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build,
                           build_sequential, build_sequential_aio)
from stardag.build import _executors
from stardag.errors import BuildInterrupted
from stardag.target import set_target_root


def mixed(task):  # gated tasks to the process pool, the rest to the thread pool
    return "process" if isinstance(task, tt.Gated) else "thread"


def main(mode, root, n_gated, n_workers, start_method):
    log = logging.getLogger("stardag")  # its debug line says when the unstarted tasks are cancelled
    log.setLevel(logging.DEBUG)
    log.addHandler(logging.StreamHandler())
    set_target_root(root)
    if start_method.endswith("+watchdog"):  # the liveness pipe other platforms use, not prctl
        _executors._PDEATHSIG = False
        start_method = start_method[:-len("+watchdog")]
    quick = [tt.Leaf(value=100 + i) for i in range(2)]
    gated = [tt.Gated(value=i, deps=tuple(quick)) for i in range(n_gated)]  # after quick, in any mode
    top = tt.Sum(deps=tuple(quick + gated))
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    try:
        if mode == "sequential":
            summary = build_sequential([top])
        elif mode == "sequential_aio":
            summary = asyncio.run(build_sequential_aio([top]))
        else:
            runner = HybridConcurrentTaskRunner(
                execution_mode_selector=mixed if mode == "mixed" else DefaultExecutionModeSelector(mode),
                max_thread_workers=n_workers, max_process_workers=n_workers, dask_n_workers=n_workers,
                process_start_method=start_method or None)
            summary = build([top], task_runner=runner)
        signame = None
    except BuildInterrupted as exc:
        summary, signame = exc.summary, exc.signal.name
    after = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    print(json.dumps({
        "signal": signame, "status": summary.status.value, "n_discovered": summary.n_discovered,
        "n_succeeded": summary.n_succeeded, "n_failed": summary.n_failed, "n_not_run": summary.n_not_run,
        "restored": after == before}), flush=True)
    for failure in summary.failures:
        print(failure, failure.traceback, file=sys.stderr)


if __name__ == "__main__":  # spawned workers import this file
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
'''

STOPPING = "stopping the build"  # printed by the signal handler
CANCELLED = "the tasks not started are cancelled"  # printed by the build's loop after that
STOPPING_NOW = "stopping the running tasks now"


class ScriptedBuild:
    """The build script in a subprocess of its own session; its stderr read line by line."""

    def __init__(self, directory: str, mode: str, n_gated: int, n_workers: int = 2, start_method: str = "",
                 env: dict[str, str] | None = None):
        script = Path(directory, "stopped_build.py")
        script.write_text(_SCRIPT)
        self.root = os.path.join(directory, "root")
        os.makedirs(self.root, exist_ok=True)  # two builds in one directory share their root
        self.proc = subprocess.Popen(
            [sys.executable, str(script), mode, self.root, str(n_gated), str(n_workers), start_method],
            env=env or subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.err: list[str] = []
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_err(self, text: str, timeout: float = 30) -> None:
        """Wait until the build prints ``text`` on stderr (it does from its signal handler)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.err):
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} on stderr in {timeout} s: {self.err}") from None
            if line is None:
                raise AssertionError(f"the build ended before printing {text!r}: {self.err}")
            self.err.append(line)

    def wait_for_gated(self, n_started: int, timeout: float = 60) -> None:
        """Wait until the 2 quick tasks are done and ``n_started`` gated tasks run."""
        deadline = time.monotonic() + timeout
        while len(tt.read_runs(self.root)) < 2 or len(gated_ids(self.root, "start")) < n_started:
            assert self.proc.poll() is None, "".join(self.err)
            assert time.monotonic() < deadline, f"{n_started} gated tasks did not start in {timeout} s"
            time.sleep(0.01)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def send(self, signum: int, group: bool = False) -> None:
        if group:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)

    def release(self) -> None:
        Path(self.root, "release").touch()

    def result(self, timeout: float = 30) -> dict[str, Any]:
        out = self.proc.stdout.read()  # until the build exits
        self.proc.wait(timeout=timeout)
        while (line := self._lines.get(timeout=timeout)) is not None:
            self.err.append(line)
        assert self.proc.returncode == 0, f"exit status {self.proc.returncode}:\n{''.join(self.err)}"
        return json.loads(out.strip().splitlines()[-1])

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc.stdout.close()


def assert_all_gone(processes: list[psutil.Process], timeout: float = 10) -> float:
    """Wait until none of ``processes`` runs; return how long that took."""
    start = time.monotonic()
    while any(alive(p) for p in processes) and time.monotonic() - start < timeout:
        time.sleep(0.01)
    left = [(p.pid, p.name()) for p in processes if alive(p)]
    assert left == [], f"orphan processes after {timeout} s"
    return time.monotonic() - start


def gated_ids(root: str, event: str = "done") -> list[str]:
    return sorted(task_id for name, task_id, _, _ in tt.read_runs(root, event) if name == "Gated")
