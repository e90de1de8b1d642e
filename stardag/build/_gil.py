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

How it learns, once per class and build: the first task of a class runs while
a worker that took a second one waits ``PROBE_S``. If the first one finishes
sooner, or used the CPU less than a quarter of that time, the class is free.
Otherwise the waiting worker's own wake-up tells: if it had to wait for the GIL
half a switch interval or more, the first task held it (C code that releases
the GIL lets a waking thread in at once), and the class runs serially. Another
thread may have had the GIL at that moment: it looks up to ``_SAMPLES`` times
before it calls a busy class free.
Only the thread pool uses this (``ThreadExecutor``); where a thread's CPU clock
cannot be read, every class is free.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import Any

__all__ = ["GilGate"]

FREE, SERIAL = "free", "serial"
PROBE_S = 0.0005  # how long a second task of an unknown class waits before it looks
_SAMPLES = 20  # looks before a busy first task that never kept it from the GIL is judged free
_CAN_PROBE = hasattr(time, "pthread_getcpuclockid")


class _Probe:
    """The first task of a class, running: its thread, its start, its thread's CPU clock then."""

    __slots__ = ("ident", "clock", "t0", "cpu0", "done")

    def __init__(self) -> None:
        self.ident = threading.get_ident()
        self.clock = time.pthread_getcpuclockid(self.ident)
        self.t0 = time.perf_counter()
        self.cpu0 = time.clock_gettime(self.clock)
        self.done = threading.Event()

    def used(self) -> tuple[float, float]:
        """(wall, CPU) seconds since the task started."""
        return time.perf_counter() - self.t0, time.clock_gettime(self.clock) - self.cpu0


class GilGate:
    """Admits tasks to run, per class: all at once (free), or one at a time (serial)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verdict: dict[type, str] = {}
        self._probes: dict[type, _Probe] = {}
        self._running: dict[type, bool] = {}  # serial classes: one of its tasks runs
        self._held: dict[type, collections.deque] = {}
        self.enabled = _CAN_PROBE
        # Classes found free: workers test this set before calling the gate at all;
        # classes found serial: the pool hands their tasks to ``hold`` first.
        self.free: set[type] = set()
        self.serial: set[type] = set()

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
                    if self._running.get(cls):
                        self._held.setdefault(cls, collections.deque()).append(item)
                        return False
                    self._running[cls] = True
                    return True
                probe = self._probes.get(cls)
                if probe is None:
                    self._probes[cls] = _Probe()
                    return True
            # Another worker runs the first task of the class: wait for it a little.
            for sample in range(1, _SAMPLES + 1):
                waited = time.perf_counter()
                if probe.done.wait(PROBE_S):
                    break
                if self._judge(cls, probe, time.perf_counter() - waited - PROBE_S, sample == _SAMPLES):
                    break

    def hold(self, cls: type, item: Any) -> bool:
        """Keep ``item`` for the worker running its (serial) class, if one runs: no idle worker wakes for it."""
        with self._lock:
            if not self._running.get(cls):
                return False
            self._held.setdefault(cls, collections.deque()).append(item)
            return True

    def _judge(self, cls: type, probe: _Probe, late: float, last: bool) -> bool:
        """The first task of ``cls`` still runs; we woke ``late`` seconds late. Whether a verdict is in."""
        with self._lock:
            if cls in self._verdict or self._probes.get(cls) is not probe:
                return True  # another waiting worker judged it
            try:
                wall, cpu = probe.used()
            except OSError:  # its thread is gone (cannot be: workers live as long as the pool)
                wall, cpu = 1.0, 0.0
            # CPU share: a quarter, not all, as on a busy machine other processes take the rest.
            busy = cpu >= 0.25 * wall
            if busy and late >= 0.5 * sys.getswitchinterval():
                verdict = SERIAL
            elif not busy or last:  # waits (I/O), or computes without keeping others from the GIL
                verdict = FREE
            else:  # another thread may have had the GIL just then: look again
                return False
            self._verdict[cls] = verdict
            if verdict is SERIAL:
                self._running[cls] = True  # the first task
                self.serial.add(cls)
            else:
                self.free.add(cls)
            del self._probes[cls]
        probe.done.set()
        return True

    def finished(self, cls: type) -> Any:
        """A task of ``cls`` that ``admit`` let run is done: the held task the caller runs next, or None."""
        if not self.enabled or (self._verdict.get(cls) is FREE and cls not in self._probes):
            return None
        probe = None
        with self._lock:
            first = self._probes.get(cls)
            if first is not None and first.ident == threading.get_ident():
                probe = first  # ended before anyone judged it
                del self._probes[cls]
                wall, cpu = probe.used()
                if wall < sys.getswitchinterval() or cpu < 0.5 * wall:
                    self._verdict[cls] = FREE  # too short to take turns, or not CPU-bound
                    self.free.add(cls)
                # else: long and CPU-bound, but no other task of its class came: the next one probes
            elif self._verdict.get(cls) is SERIAL:
                held = self._held.get(cls)
                if held:
                    return held.popleft()
                self._running[cls] = False
        if probe is not None:
            probe.done.set()
        return None
