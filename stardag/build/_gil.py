"""Which task classes hold the GIL: the thread pool runs their tasks one at a time.

Under the GIL, tasks that run Python code without pause go no faster side by
side than one after the other: they take turns, and every turn
(``sys.getswitchinterval()``, 5 ms) hands the GIL to another thread, which a
kernel must wake, often on another core, while nobody runs. On the benchmark's
CPU-bound tasks those hand-offs cost 5-7% of the work with 2 to 6 threads
alike (2 cores shared with other jobs; Dask's threaded scheduler and
``ThreadPoolExecutor`` pay the same). So the pool learns, per task class,
whether its tasks hold the GIL; if they do, it runs them one at a time, while
tasks of other classes (I/O, C code that releases the GIL) run beside them.

The two mistakes are not equal. A class wrongly run side by side pays those few
per cent; a class wrongly run one at a time loses all its overlap: 100 tasks
that compute for 5 ms, then wait 100 ms on a socket, would take 10 s instead of
well under one. So the verdict "serial" is hard to get and easy to lose:

- The first task of a class runs while a worker that took a second one waits
  ``PROBE_S`` and looks (one worker looks; others that took one wait for its
  verdict). If the first ends before a verdict, the class is free if it was
  short (under a switch interval: no turns to take) or waited, else the next
  task of the class is a first one. While it runs, if it has used less than
  a quarter of the CPU it could get, the class is free. Otherwise the looking
  worker's own wake-up tells: if it had to wait for the GIL half a switch
  interval or more (its time waiting for a CPU, from the kernel's scheduler
  statistics, left out), the first task held it; C code that releases the
  GIL lets a waking thread in at once. Two such late wake-ups make the class serial;
  ``_SAMPLES`` looks without them make it free.
- The tasks of a serial class are then watched over their whole runs: once
  they have waited (wall time neither on a CPU nor waiting for one: I/O, a
  lock, the GIL held by another thread) more than ``1 - MIN_SHARE`` of the
  time they could have run, and ``_MIN_WAIT_S`` in all, the class is free for
  the rest of the build, and its waiting tasks go back to the pool's queue.
  This is looked at when one of its tasks ends, and, while others of its
  class wait behind one, every ``REVIEW_S`` by the driver (when it wakes
  anyway, to poll): a task that waits long does not keep the rest waiting
  until it ends.

A class is judged per build and, once free, stays free for it. Only the thread
pool uses this (``ThreadExecutor``). Where a thread's CPU clock cannot be read,
and on a free-threaded Python (no GIL), every class is free.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from typing import Any, Callable, Iterable

__all__ = ["FREE", "GilGate", "SERIAL"]

FREE, SERIAL = "free", "serial"
PROBE_S = 0.0005  # how long a second task of an unknown class waits before it looks
_SAMPLES = 20  # looks before a busy first task that never kept it from the GIL is judged free
_N_LATE = 2  # late wake-ups that make a class serial
MIN_SHARE = 0.8  # a serial class's task that used less of the CPU it could get waited: the class is free
_MIN_WAIT_S = 0.01  # waiting less than this in all is noise, not a class that waits
REVIEW_S = 0.5  # how often the driver looks at a running task of a serial class that others wait for
_CAN_PROBE = hasattr(time, "pthread_getcpuclockid")


def gil_enabled() -> bool:
    """Whether this interpreter runs Python code under a GIL (False on a free-threaded build)."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


class _SchedStat:
    """Reads how long a thread of this process has waited for a CPU (Linux ``schedstat``), keeping the GIL.

    ``os.read`` would release the GIL, and a task that holds it would take it
    at once: every read would cost a hand-off of the GIL and back, which is
    what the gate is there to avoid. So libc is called through ``ctypes.PyDLL``.
    """

    def __init__(self) -> None:
        import ctypes

        libc = ctypes.PyDLL(None)  # a PyDLL's calls keep the GIL
        self._open, self._pread, self._close = libc.open, libc.pread, libc.close
        self._open.argtypes, self._open.restype = (ctypes.c_char_p, ctypes.c_int), ctypes.c_int
        self._pread.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long)
        self._pread.restype = ctypes.c_ssize_t
        self._close.argtypes, self._close.restype = (ctypes.c_int,), ctypes.c_int
        self._flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
        self._make_buffer = ctypes.create_string_buffer

    def run_delay(self, native_id: int) -> float:
        fd = self._open(f"/proc/self/task/{native_id}/schedstat".encode(), self._flags)
        if fd < 0:
            raise OSError(f"cannot open the schedstat of thread {native_id}")
        try:
            buffer = self._make_buffer(128)
            n = self._pread(fd, buffer, 128, 0)
        finally:
            self._close(fd)
        return int(buffer.raw[:max(n, 0)].split()[1]) * 1e-9


_schedstat: _SchedStat | None | bool = None  # None: not tried yet; False: not available


def run_delay(native_id: int) -> float:
    """Seconds thread ``native_id`` of this process has waited for a CPU so far (0 where unknown).

    On a machine busy with other processes, that time is not the task's doing.
    """
    global _schedstat
    reader = _schedstat
    if reader is None:
        try:
            reader = _schedstat = _SchedStat()
            reader.run_delay(threading.get_native_id())
        except Exception:  # no ctypes, no libc symbols, no /proc: lateness and shares count it in
            reader = _schedstat = False
    if reader is False:
        return 0.0
    try:
        return reader.run_delay(native_id)
    except (OSError, ValueError, IndexError):
        return 0.0


def _waited(could: float, waited: float) -> bool:
    """Whether tasks that could have run ``could`` seconds, and waited ``waited`` of them, wait on something.

    The floor keeps a few ms of waiting for the GIL behind another thread (the
    driver waking up, a thread preempted while it held the GIL) from counting.
    """
    return waited > (1 - MIN_SHARE) * could and waited >= _MIN_WAIT_S


class _Run:
    """A task running in the calling thread: its thread, and the thread's clocks when it started."""

    __slots__ = ("ident", "native_id", "clock", "t0", "cpu0", "delay0", "done", "looker")

    def __init__(self, probe: bool = False) -> None:
        self.ident = threading.get_ident()
        self.native_id = threading.get_native_id()
        self.clock = time.pthread_getcpuclockid(self.ident)
        self.delay0 = run_delay(self.native_id)
        self.t0 = time.perf_counter()
        self.cpu0 = time.clock_gettime(self.clock)
        self.done = threading.Event() if probe else None
        self.looker: int | None = None  # the thread of the worker that looks at it (a probe)

    def used(self) -> tuple[float, float]:
        """(seconds it could have run: wall time less time waiting for a CPU, CPU seconds) so far."""
        cpu = time.clock_gettime(self.clock) - self.cpu0
        wall = time.perf_counter() - self.t0
        return wall - (run_delay(self.native_id) - self.delay0), cpu


class GilGate:
    """Admits tasks to run, per class: all at once (free), or one at a time (serial).

    ``release(item)`` puts back on the pool's queue a task the gate held, when
    its class turns out free after all.
    """

    def __init__(self, release: Callable[[Any], None]) -> None:
        self._lock = threading.Lock()
        self._release = release
        self._verdict: dict[type, str] = {}
        self._probes: dict[type, _Run] = {}  # the first task of a class not judged yet
        self._running: dict[type, _Run] = {}  # serial classes: the one of its tasks that runs
        self._held: dict[type, collections.deque] = {}
        self._spent: dict[type, list[float]] = {}  # serial classes: [could have run, waited] in s, summed
        self.enabled = _CAN_PROBE and gil_enabled()
        # Classes found free: workers test this set before calling the gate at all;
        # classes found serial: the pool hands their tasks to ``hold`` first.
        self.free: set[type] = set()
        self.serial: set[type] = set()
        self.n_freed = 0  # serial classes found waiting after all

    def verdicts(self) -> dict[str, str]:
        """``{class name: "free" or "serial"}`` for the classes judged so far."""
        return {cls.__qualname__: verdict for cls, verdict in dict(self._verdict).items()}

    def admit(self, cls: type, item: Any) -> bool:
        """Whether the calling worker runs ``item`` (a task of ``cls``) now; if not, the gate holds it."""
        if not self.enabled:
            return True
        while True:
            if self._verdict.get(cls) is FREE:
                return True
            with self._lock:
                verdict = self._verdict.get(cls)
                if verdict is FREE:
                    return True
                if verdict is SERIAL:
                    if cls in self._running:
                        self._held.setdefault(cls, collections.deque()).append(item)
                        return False
                    self._running[cls] = _Run()
                    return True
                probe = self._probes.get(cls)
                if probe is None:
                    self._probes[cls] = _Run(probe=True)
                    return True
            self._look(cls, probe)

    def _look(self, cls: type, probe: _Run) -> None:
        """Another worker runs the first task of ``cls``: wait for it, and judge it if it goes on.

        One waiting worker looks, the others wait for its verdict: each look
        takes the GIL from a first task that holds it.
        """
        with self._lock:
            looks = probe.looker is None
            if looks:
                probe.looker = threading.get_ident()
        if not looks:
            probe.done.wait()
            return
        me = threading.get_native_id()
        n_late = 0
        delay = run_delay(me)
        for sample in range(1, _SAMPLES + 1):
            start = time.perf_counter()
            if probe.done.wait(PROBE_S):
                return
            # Late getting the GIL back: what we waited beyond PROBE_S, less the
            # time spent waiting for a CPU (since the last read: at most this long).
            late = time.perf_counter() - start - PROBE_S
            if late >= 0.5 * sys.getswitchinterval():
                last_delay, delay = delay, run_delay(me)
                n_late += late - (delay - last_delay) >= 0.5 * sys.getswitchinterval()
            if self._judge(cls, probe, n_late, sample == _SAMPLES):
                return

    def _judge(self, cls: type, probe: _Run, n_late: int, last: bool) -> bool:
        """The first task of ``cls`` still runs; ``n_late`` looks found it held the GIL. Whether a verdict is in."""
        with self._lock:
            if cls in self._verdict or self._probes.get(cls) is not probe:
                return True  # another waiting worker judged it
            try:
                could, cpu = probe.used()
            except OSError:  # its thread is gone (cannot be: workers live as long as the pool)
                could, cpu = 1.0, 0.0
            busy = cpu >= 0.25 * could
            if busy and n_late >= _N_LATE:
                verdict = SERIAL
            elif not busy or last:  # waits (I/O), or computes without keeping others from the GIL
                verdict = FREE
            else:  # another thread may have had the GIL just then: look again
                return False
            self._verdict[cls] = verdict
            del self._probes[cls]
            if verdict is SERIAL:
                self._running[cls] = probe  # the first task, watched from its start
                self.serial.add(cls)
            else:
                self.free.add(cls)
        probe.done.set()
        return True

    def hold(self, cls: type, item: Any) -> bool:
        """Keep ``item`` for the worker running its (serial) class, if one runs: no idle worker wakes for it."""
        with self._lock:
            if cls not in self._running:
                return False
            self._held.setdefault(cls, collections.deque()).append(item)
            return True

    def finished(self, cls: type) -> Any:
        """A task of ``cls`` that ``admit`` let run is done: the held task the caller runs next, or None."""
        if not self.enabled or (self._verdict.get(cls) is FREE and cls not in self._probes):
            return None
        probe = None
        released: Iterable[Any] = ()
        me = threading.get_ident()
        with self._lock:
            first = self._probes.get(cls)
            run = self._running.get(cls)
            if first is not None and first.ident == me:
                probe = first  # ended before anyone judged it
                del self._probes[cls]
                could, cpu = probe.used()
                if could < sys.getswitchinterval() or _waited(could, could - cpu):
                    self._verdict[cls] = FREE  # too short to take turns, or not CPU-bound
                    self.free.add(cls)
                # else: long and CPU-bound, but no other task of its class came: the next one probes
            elif run is not None and run.ident == me:
                could, cpu = run.used()
                spent = self._spent.setdefault(cls, [0.0, 0.0])
                spent[0] += could
                spent[1] += could - cpu
                if _waited(*spent):
                    released = self._set_free(cls)
                else:
                    held = self._held.get(cls)
                    if held:
                        self._running[cls] = _Run()
                        return held.popleft()
                    del self._running[cls]
        if probe is not None:
            probe.done.set()
        for item in released:
            self._release(item)
        return None

    def review(self) -> bool:
        """Free each serial class whose running task has used less than ``MIN_SHARE`` of the CPU so far.

        Only classes with tasks held behind the running one are looked at (if
        none wait, the verdict at its end is soon enough), and only after it
        ran for two switch intervals. Returns whether such a class is left:
        the driver calls again in ``REVIEW_S``.
        """
        released: list[Any] = []
        watching = False
        with self._lock:
            for cls, run in list(self._running.items()):
                if not self._held.get(cls):
                    continue
                try:
                    could, cpu = run.used()
                except OSError:
                    continue
                spent = self._spent.get(cls, (0.0, 0.0))
                if _waited(spent[0] + could, spent[1] + could - cpu):
                    released.extend(self._set_free(cls))
                else:
                    watching = True
        for item in released:
            self._release(item)
        return watching

    def _set_free(self, cls: type) -> collections.deque:
        """A serial class waited after all: free for the rest of the build; returns its held tasks (lock held)."""
        self._verdict[cls] = FREE
        self.free.add(cls)
        self.serial.discard(cls)
        self._running.pop(cls, None)
        self.n_freed += 1
        return self._held.pop(cls, collections.deque())
