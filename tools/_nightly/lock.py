"""One nightly run at a time, in a private state directory, with no stale lock.

The lock is ``fcntl.flock`` on ``STATE/nightly.lock``, a file that is never
deleted. The kernel drops a flock when the last descriptor to it closes, so a
run that is SIGKILLed or loses power leaves nothing to clean up. The state
directory is 0700 and the lock file 0600: no other user can open the lock,
let alone hold it.

The file names the holder: pid, the pid's start time (a pid alone may be
reused) and the run's stamp. A busy lock whose holder is a live nightly run
means "another run is busy": exit 0. A busy lock held by anything else is an
error (exit 2) naming what holds it, except leftovers of a killed run (asv
inherits the descriptor), which are killed first: a run must never be skipped
night after night because of a stale pid.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import stat
import time
from dataclasses import dataclass
from typing import Callable

from _nightly import reaper


_NAMING_S = 1.0  # how long a run that just took the lock may take to write its name


class LockBusy(Exception):
    """A live nightly run holds the lock: this one has nothing to do."""


class LockError(Exception):
    """The lock or the state directory cannot be used safely; the message says why and what to do."""


def prepare_private_dir(path: str, is_mine: Callable[[list[str]], bool]) -> str | None:
    """Create ``path`` as a 0700 directory of this user, or make it one; a note if changed.

    An existing directory is tightened only when it is the job's: empty, or
    ``is_mine(its entries)``. Anything else (someone's files, /tmp, a home) is
    refused untouched: the job would delete and chmod in there.
    """
    try:
        os.mkdir(path, 0o700)
        return None
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path, mode=0o700)
        return None
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise LockError(f"{path!r} is not a directory")
    if st.st_uid != os.geteuid():
        raise LockError(f"{path!r} belongs to uid {st.st_uid}, not to this user "
                        f"(uid {os.geteuid()}); run the job as its owner or choose another")
    names = os.listdir(path)
    if names and not is_mine(names):
        shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
        raise LockError(f"{path!r} holds files the nightly job did not make ({shown}); it is "
                        "left untouched: give the job a directory of its own (new or empty)")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
        return f"{path}: permissions {stat.S_IMODE(st.st_mode):o} tightened to 700"
    return None


@dataclass(frozen=True)
class Holder:
    """Who took the lock, as written in the lock file."""

    pid: int
    start: str  # the pid's start time in clock ticks since boot (/proc/PID/stat), or "?"
    stamp: str  # the run's stamp: its processes carry it (reaper)
    since: str

    def line(self) -> str:
        return f"pid {self.pid} start {self.start} run {self.stamp} since {self.since}\n"

    def describe(self) -> str:
        return f"pid {self.pid}, run {self.stamp}, since {self.since}"

    @classmethod
    def parse(cls, text: str) -> "Holder | None":
        words = text.split()
        fields = dict(zip(words[0::2], words[1::2]))
        try:
            return cls(int(fields["pid"]), fields["start"], fields["run"], fields["since"])
        except (KeyError, ValueError):
            return None

    def alive(self) -> bool:
        """Whether the process that took the lock still runs (the same process, not a reused pid)."""
        start = process_start(self.pid)
        if start is not None:
            return start == self.start
        try:  # no /proc: the pid alone
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not os.path.isdir("/proc")


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` (field 22 of /proc/PID/stat), None if unknown or gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            after_name = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return after_name[19].decode()  # fields 3.. follow the name; starttime is field 22


class RunLock:
    """An exclusive, non-blocking flock on ``path`` for run ``stamp``; a context manager.

    ``previous`` is the holder the file named before this run took it: the last
    run, whose leftovers the job then stops.
    """

    def __init__(self, path: str, stamp: str) -> None:
        self.path = path
        self.stamp = stamp
        self.fd: int | None = None
        self.previous: Holder | None = None
        self.notes: list[str] = []

    def __enter__(self) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            self._check_file(fd)
            self._acquire(fd)
        except BaseException:
            os.close(fd)
            raise
        self.previous = Holder.parse(_read(fd))
        since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = Holder(os.getpid(), process_start(os.getpid()) or "?", self.stamp, since).line().encode()
        os.pwrite(fd, line, 0)  # then cut what is left of a longer name: never an empty file
        os.ftruncate(fd, len(line))
        self.fd = fd
        return self

    def _check_file(self, fd: int) -> None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise LockError(f"{self.path!r} is not a regular file of this user (uid "
                            f"{os.geteuid()}); remove it, the job creates its own")
        if stat.S_IMODE(st.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
            self.notes.append(f"{self.path}: permissions {stat.S_IMODE(st.st_mode):o} "
                              "tightened to 600")

    def _acquire(self, fd: int) -> None:
        if _try_flock(fd):
            return
        holder = Holder.parse(_read(fd))
        # A run that has just taken the lock writes its name a moment later: until
        # then the file names the run before it (gone), or nothing.
        deadline = time.monotonic() + _NAMING_S
        while not (holder is not None and holder.alive()) and time.monotonic() < deadline:
            time.sleep(0.05)
            if _try_flock(fd):
                return
            holder = Holder.parse(_read(fd))
        if holder is not None and holder.alive():
            raise LockBusy(f"another nightly run holds {self.path!r} ({holder.describe()}); "
                           "this one exits")
        # Not a live run: leftovers of a killed one may hold the inherited descriptor.
        n_killed = reaper.kill(holder.stamp) if holder is not None else 0
        deadline = time.monotonic() + 5
        while n_killed and time.monotonic() < deadline:
            if _try_flock(fd):
                self.notes.append(f"killed {n_killed} leftover process(es) of run "
                                  f"{holder.stamp} that held the lock")
                return
            time.sleep(0.05)
        holders = ", ".join(_describe_pid(p) for p in _flock_holders(fd)) or "unknown"
        raise LockError(
            f"{self.path!r} is locked by something that is not a live nightly run (the file "
            f"names {holder.describe() if holder else 'no run'}, which is gone; processes "
            f"holding the lock: {holders}); stop that process, then run again"
        )

    def __exit__(self, *exc_info: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 300, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def _flock_holders(fd: int) -> list[int]:
    """Pids that /proc/locks lists as holding a flock on ``fd``'s file (Linux only)."""
    st = os.fstat(fd)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    pids = []
    for line in lines:
        parts = line.split()
        if "FLOCK" in parts and "->" not in parts and len(parts) > 5 and parts[5] == dev:
            pids.append(int(parts[4]))
    return pids


def _describe_pid(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = "?"
    return f"pid {pid} ({cmd[:120]})"
