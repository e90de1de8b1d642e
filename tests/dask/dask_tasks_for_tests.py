"""Task classes for the Dask tests; importable, so Dask's worker processes can unpickle them.

The shared ones (``Leaf``, ``Sum``, ``Dynamic``, ``Dies``, ...) live in
``tests/tasks_for_tests.py``; these add what only the Dask tests need.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from typing import Any

from stardag import AutoTask, Task
from stardag.target import get_target_root


class Where(AutoTask[dict]):
    """Saves the pid it ran in, its index and its dependencies' indices."""

    task_namespace = "dask_tests"
    index: int = 0
    deps: tuple[Task, ...] = ()
    sleep: float = 0.0
    iterations: int = 0

    def requires(self) -> Any:
        return self.deps

    def run(self) -> None:
        if self.sleep:
            time.sleep(self.sleep)
        digest = b"stardag"
        for _ in range(self.iterations):
            digest = hashlib.sha256(digest).digest()
        self.output().save({"index": self.index, "pid": os.getpid(),
                            "inputs": [dep.load()["index"] for dep in self.deps]})


class AsyncWhere(Where):
    """Defines ``run_aio``: runs on the driver's event loop, whatever the sync mode."""

    async def run_aio(self) -> None:
        self.output().save({"index": self.index, "pid": os.getpid(),
                            "inputs": [dep.load()["index"] for dep in self.deps]})


class DiesOnce(AutoTask[int]):
    """Kills its worker (SIGKILL) the first time it runs, then succeeds on the retry."""

    task_namespace = "dask_tests"
    index: int = 0

    def run(self) -> None:
        marker = os.path.join(get_target_root(), f"attempted-{self.task_id}")
        if not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        self.output().save(os.getpid())


class ExitsTask(AutoTask[int]):
    """Calls ``sys.exit``: must fail the task, not the worker."""

    task_namespace = "dask_tests"

    def run(self) -> None:
        raise SystemExit(3)
