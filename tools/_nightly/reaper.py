"""Everything a run starts dies with it, however it ends.

asv puts each command it runs in a process group of its own, and the suite's
Dask cluster starts a session of its own (it must outlive the benchmark that
starts it), so neither the job's process group nor ``PR_SET_PDEATHSIG`` reaches
them all. What does reach them is the environment: every process the run starts
inherits ``STARDAG_NIGHTLY_RUN=<run stamp>``, and the stamp (time and pid) names
one run only. So a run's processes are found by reading ``/proc/PID/environ``
(of this user's processes; others are unreadable) for that exact entry:

- a watchdog, started first in a session of its own and not marked, waits for
  the job to close a pipe; the kernel closes it when the job dies in any way
  (SIGKILL included), and the watchdog kills the run's processes;
- the job kills what is left of its own run when it ends, and the next run,
  under the lock, what is left of the previous one (the watchdog killed too).

On a system without ``/proc`` nothing is found: there only ``PR_SET_PDEATHSIG``
(Linux) and the process group apply.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

MARK_VAR = "STARDAG_NIGHTLY_RUN"
GRACE_SECONDS = 3.0  # between SIGTERM and SIGKILL


def mark(stamp: str) -> None:
    """Mark everything this process starts from now on as run ``stamp``'s."""
    os.environ[MARK_VAR] = stamp


def find(stamp: str) -> list[int]:
    """Pids of live processes marked as run ``stamp``'s (never this process)."""
    entry = f"{MARK_VAR}={stamp}".encode()
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()
        except OSError:  # gone, or another user's
            continue
        if entry in environ.split(b"\0"):
            found.append(int(name))
    return found


def kill(stamp: str, timeout: float = 10.0, grace: float = GRACE_SECONDS) -> int:
    """Stop every process of run ``stamp``: SIGTERM, SIGKILL what is left after ``grace``.

    SIGTERM first: multiprocessing's resource tracker ignores it and, once the
    processes it serves are gone, unlinks their named semaphores; SIGKILL of all
    at once left them in /dev/shm for good (6 for the suite's Dask cluster).
    Returns how many processes were found.
    """
    if not stamp:
        return 0
    stopped: set[int] = set()
    for sig, seconds in ((signal.SIGTERM, grace), (signal.SIGKILL, timeout)):
        deadline = time.monotonic() + seconds
        while (pids := find(stamp)) and time.monotonic() < deadline:
            for pid in pids:  # a process may fork meanwhile: look again until none is found
                if sig == signal.SIGKILL or pid not in stopped:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        continue
                    stopped.add(pid)
            time.sleep(0.02)
    return len(stopped)


def start_watchdog(stamp: str) -> int:
    """Start the watchdog of run ``stamp``; return the pipe end to keep open while running.

    Closing the returned descriptor (the job ending, or dying) makes the watchdog
    kill whatever of the run is still running, then exit.
    """
    read_end, write_end = os.pipe()  # not inheritable: children never hold the write end
    env = {k: v for k, v in os.environ.items() if k != MARK_VAR}  # it must not find itself
    try:
        subprocess.Popen(
            # -I: this module's folder must not shadow the standard library on sys.path
            [sys.executable, "-I", os.path.abspath(__file__), stamp],
            stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True,  # a Ctrl-C or a group kill does not reach it
        )
    finally:
        os.close(read_end)
    return write_end


def _watch(stamp: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while os.read(0, 4096):  # EOF: every copy of the write end is closed
        pass
    kill(stamp)


if __name__ == "__main__":
    _watch(sys.argv[1])
