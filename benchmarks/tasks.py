"""Benchmark tasks: four workloads, each a sync class and an async subclass.

The library sends every task that defines ``run_aio`` to the event loop, whatever
the runner. So the sequential, thread_pool and process_pool configurations use
the sync classes (``run`` only), and the async configuration their ``Async*``
subclasses, which add ``run_aio``. Every task saves a small output.

Workloads: IO-bound (sleep 0.1 s; ``asyncio.sleep`` in ``run_aio``), CPU-bound
(100k SHA-256 iterations, ~20 ms), heavy CPU (5M iterations, ~1 s) and light
(``sum(range(100))``). CPU work in ``run_aio`` runs on the loop and blocks it:
that is what async costs CPU-bound code.

The classes live here, at module level, so worker processes can import them.
On a commit without stardag this module imports and defines nothing; the
benchmarks' ``setup`` then skips.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

from benchmarks.common import WORK_SCALE

try:
    from stardag import AutoTask, Task
except ImportError:  # a commit without the library: nothing to define
    AutoTask = None
try:  # imported once by asv's benchmark server instead of in every benchmark process
    import stardag.build  # noqa: F401
except ImportError:
    pass

# WORK_SCALE is 1 except in a smoke run (benchmarks/common.py).
CPU_ITERATIONS = int(100_000 * WORK_SCALE)
HEAVY_ITERATIONS = int(5_000_000 * WORK_SCALE)
IO_SECONDS = 0.1 * WORK_SCALE


def sha256_chain(iterations: int) -> str:
    """Hash a 32-byte digest ``iterations`` times (holds the GIL: short inputs)."""
    digest = b"stardag"
    for _ in range(iterations):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def light_work() -> int:
    return sum(range(100))


if AutoTask is not None:

    class IOBoundTask(AutoTask[dict]):
        """Sleeps ``sleep_duration`` seconds: a blocking call in ``run``."""

        deps: tuple[Task, ...] = ()
        index: int = 0
        sleep_duration: float = IO_SECONDS

        def requires(self):
            return self.deps

        def run(self) -> None:
            time.sleep(self.sleep_duration)
            self.output().save({"index": self.index})

    class AsyncIOBoundTask(IOBoundTask):
        """True async I/O: ``asyncio.sleep`` frees the loop while waiting."""

        async def run_aio(self) -> None:
            await asyncio.sleep(self.sleep_duration)
            self.output().save({"index": self.index})

    class CPUBoundTask(AutoTask[dict]):
        """``iterations`` SHA-256 rounds (100k: ~20 ms)."""

        deps: tuple[Task, ...] = ()
        index: int = 0
        iterations: int = CPU_ITERATIONS

        def requires(self):
            return self.deps

        def run(self) -> None:
            self.output().save({"digest": sha256_chain(self.iterations)})

    class AsyncCPUBoundTask(CPUBoundTask):
        async def run_aio(self) -> None:
            self.output().save({"digest": sha256_chain(self.iterations)})

    class HeavyCPUTask(CPUBoundTask):
        """5M SHA-256 rounds: ~1 s."""

        iterations: int = HEAVY_ITERATIONS

    class AsyncHeavyCPUTask(HeavyCPUTask):
        async def run_aio(self) -> None:
            self.output().save({"digest": sha256_chain(self.iterations)})

    class LightTask(AutoTask[int]):
        """``sum(range(100))``: near-zero work, so the build's own cost shows."""

        deps: tuple[Task, ...] = ()
        index: int = 0

        def requires(self):
            return self.deps

        def run(self) -> None:
            self.output().save(light_work())

    class AsyncLightTask(LightTask):
        async def run_aio(self) -> None:
            self.output().save(light_work())

    class DynamicIOTask(IOBoundTask):
        """Finds its dependencies at run time: yields ``n_leaves`` IO tasks, then sleeps.

        ``run`` must yield the same tasks if run again (the process pool restarts it).
        """

        n_leaves: int = 4

        def leaves(self) -> tuple[IOBoundTask, ...]:
            return tuple(IOBoundTask(index=self.index * 100 + i) for i in range(self.n_leaves))

        def run(self):
            yield self.leaves()
            time.sleep(self.sleep_duration)
            self.output().save({"index": self.index})

    class AsyncDynamicIOTask(DynamicIOTask):
        def leaves(self) -> tuple[IOBoundTask, ...]:
            return tuple(AsyncIOBoundTask(index=self.index * 100 + i) for i in range(self.n_leaves))

        async def run_aio(self):
            yield self.leaves()
            await asyncio.sleep(self.sleep_duration)
            self.output().save({"index": self.index})
