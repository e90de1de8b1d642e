"""Ctrl-C and SIGTERM during a build: the first stops starting tasks, the second stops running ones.

While a build runs in the main thread, it handles SIGINT (and SIGTERM, once it
runs a thread pool, process pool or Dask) itself, and puts the previous
handlers back when it ends. Left to asyncio, a Ctrl-C only cancels the build at
its next ``await``, and a build that runs tasks inline (sequential, ``blocking``)
never awaits: it ran to the end before it stopped.

The handler never changes build state: it counts, and wakes the driver's loop,
which stops on its next turn. It raises ``KeyboardInterrupt`` itself only where
that is safe and what the user asked for: while the build is still discovering
its graph (nothing runs yet), and in a task running inline on the driver's
thread at the second signal.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable

__all__ = ["StopSignals"]


class StopSignals:
    """The signals one build handles, and how many of them arrived."""

    def __init__(self, on_signal: Callable[[int], None]):
        self.n_received = 0
        self.first: int | None = None  # the first signal received
        self.raise_now = False  # nothing runs: an interrupt may land anywhere
        self.inline = False  # a task runs inline on this thread: a second signal interrupts it
        self._on_signal = on_signal
        self._previous: dict[int, Any] = {}

    def handle(self, signum: int) -> None:
        """Handle ``signum`` until :meth:`restore`; only in the main thread, and only once."""
        if signum in self._previous or threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signum)
        if previous is None:  # installed outside Python: it could not be put back
            return
        signal.signal(signum, self._receive)
        self._previous[signum] = previous

    def restore(self) -> None:
        """Put back the handlers that were there before."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _receive(self, signum: int, frame: Any) -> None:
        self.n_received += 1
        if self.first is None:
            self.first = signum
        self._on_signal(signum)
        if self.raise_now or (self.inline and self.n_received > 1):
            raise KeyboardInterrupt
