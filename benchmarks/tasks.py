"""Benchmark tasks: the workloads, each a sync class and an async subclass.

The library sends every task that defines ``run_aio`` to the event loop, whatever
the runner. So the sequential, thread_pool, process_pool and dask configurations
use the sync classes (``run`` only), and the async configuration their
``Async*`` subclasses, which add ``run_aio``. The hybrid scenarios build the
``Async*`` classes under the thread pool, as the seed does. Every task saves an
output.

Workloads: IO-bound (sleep 0.1 s, or 0.01 s in the 101-task fan-in;
``asyncio.sleep`` in ``run_aio``), CPU-bound (100k SHA-256 iterations, ~20 ms),
heavy CPU (5M iterations, ~1 s), light (``sum(range(100))``), and file I/O
through the target's file interface (``output().open``, ``open_aio``): one 10 kB
write, or three cycles of writing 50 kB and reading it back. Each workload also
has a task that yields its leaves at run time (dynamic dependencies). CPU work
in ``run_aio`` runs on the loop and blocks it: that is what async costs
CPU-bound code.

The classes live here, at module level, so worker processes can import them.
On a commit without stardag this module imports and defines nothing; the
benchmarks' ``setup`` then skips.
"""

from __future__ import annotations

import asyncio
import functools
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
SHORT_IO_SECONDS = 0.01 * WORK_SCALE
FILE_BYTES = 10_000  # one write per task (file_io_flat)
RW_BYTES = 50_000  # written and read back RW_CYCLES times per task (file_io_heavy)
RW_CYCLES = 3


def sha256_chain(iterations: int) -> str:
    """Hash a 32-byte digest ``iterations`` times (holds the GIL: short inputs)."""
    digest = b"stardag"
    for _ in range(iterations):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def light_work() -> int:
    return sum(range(100))


@functools.lru_cache(maxsize=4)
def payload(n_bytes: int) -> str:
    """``n_bytes`` of text that is also a JSON string, so the output loads back."""
    return '"' + "x" * (n_bytes - 2) + '"'


def check_read(text: str, n_bytes: int) -> None:
    if len(text) != n_bytes:
        raise RuntimeError(f"read {len(text)} bytes back, wrote {n_bytes}")


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

    class FileWriteTask(AutoTask[str]):
        """Writes ``n_bytes`` through ``output().open("w")``: a file written as a user writes one."""

        deps: tuple[Task, ...] = ()
        index: int = 0
        n_bytes: int = FILE_BYTES

        def requires(self):
            return self.deps

        def run(self) -> None:
            with self.output().open("w") as f:
                f.write(payload(self.n_bytes))

    class AsyncFileWriteTask(FileWriteTask):
        """The same through ``async with output().open_aio("w")``."""

        async def run_aio(self) -> None:
            async with self.output().open_aio("w") as f:
                await f.write(payload(self.n_bytes))

    class FileReadWriteTask(FileWriteTask):
        """``n_cycles`` times: write ``n_bytes`` with ``open("w")``, read them back with ``open("r")``."""

        n_bytes: int = RW_BYTES
        n_cycles: int = RW_CYCLES

        def run(self) -> None:
            data = payload(self.n_bytes)
            for _ in range(self.n_cycles):
                with self.output().open("w") as f:
                    f.write(data)
                with self.output().open("r") as f:
                    check_read(f.read(), self.n_bytes)

    class AsyncFileReadWriteTask(FileReadWriteTask):
        async def run_aio(self) -> None:
            data = payload(self.n_bytes)
            for _ in range(self.n_cycles):
                async with self.output().open_aio("w") as f:
                    await f.write(data)
                async with self.output().open_aio("r") as f:
                    check_read(await f.read(), self.n_bytes)

    # Dynamic dependencies: ``run`` yields ``n_leaves`` leaves of its workload
    # (found only at run time), then does the same work as they do. ``run`` must
    # yield the same tasks if run again: the process pool and Dask restart it.

    class DynamicIOTask(IOBoundTask):
        """Yields ``n_leaves`` IO tasks, then sleeps."""

        n_leaves: int = 8

        def leaves(self) -> tuple[IOBoundTask, ...]:
            return tuple(IOBoundTask(index=i) for i in range(self.n_leaves))

        def run(self):
            yield self.leaves()
            IOBoundTask.run(self)

    class AsyncDynamicIOTask(DynamicIOTask):
        def leaves(self) -> tuple[IOBoundTask, ...]:
            return tuple(AsyncIOBoundTask(index=i) for i in range(self.n_leaves))

        async def run_aio(self):
            yield self.leaves()
            await AsyncIOBoundTask.run_aio(self)

    class DynamicCPUTask(CPUBoundTask):
        """Yields ``n_leaves`` CPU tasks, then hashes."""

        n_leaves: int = 8

        def leaves(self) -> tuple[CPUBoundTask, ...]:
            return tuple(CPUBoundTask(index=i) for i in range(self.n_leaves))

        def run(self):
            yield self.leaves()
            CPUBoundTask.run(self)

    class AsyncDynamicCPUTask(DynamicCPUTask):
        def leaves(self) -> tuple[CPUBoundTask, ...]:
            return tuple(AsyncCPUBoundTask(index=i) for i in range(self.n_leaves))

        async def run_aio(self):
            yield self.leaves()
            await AsyncCPUBoundTask.run_aio(self)

    class DynamicLightTask(LightTask):
        """Yields ``n_leaves`` light tasks, then does the light work."""

        n_leaves: int = 8

        def leaves(self) -> tuple[LightTask, ...]:
            return tuple(LightTask(index=i) for i in range(self.n_leaves))

        def run(self):
            yield self.leaves()
            LightTask.run(self)

    class AsyncDynamicLightTask(DynamicLightTask):
        def leaves(self) -> tuple[LightTask, ...]:
            return tuple(AsyncLightTask(index=i) for i in range(self.n_leaves))

        async def run_aio(self):
            yield self.leaves()
            await AsyncLightTask.run_aio(self)
