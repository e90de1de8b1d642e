"""One nightly run at a time, with no stale lock after a crash.

The lock is ``fcntl.flock`` on a file that is never deleted. The kernel drops a
flock when the last descriptor to it closes, so a run that is SIGKILLed or
loses power leaves nothing to clean up: the next run simply gets the lock. The
pid written into the file is for the message only, never for the decision.
"""

from __future__ import annotations

import datetime
import fcntl
import os


class LockBusy(Exception):
    """Another process holds the nightly lock."""


class RunLock:
    """An exclusive, non-blocking flock on ``path``; use as a context manager."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockBusy(
                f"another nightly run holds {self.path!r} ({holder}); this one exits"
            ) from None
        os.ftruncate(fd, 0)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.pwrite(fd, f"pid {os.getpid()} since {stamp}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"
