"""Task classes shared by the tests; importable, so worker processes can unpickle them.

Every task that finishes appends one line ``<class> <task_id> <pid>`` to
``runs.log`` under the target root (nothing for ``memory://`` roots), so tests
can count runs across threads and processes. Families: the sync classes define
only ``run()``, the ``A*`` classes only ``run_aio()``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from stardag import AutoTask, Task
from stardag.registry import RegistryABC
from stardag.target import get_target_root, is_memory_root

if TYPE_CHECKING:
    from stardag.build import BuildSummary

RUNS_LOG = "runs.log"


def log_run(task: Task, event: str = "done") -> None:
    """Record that ``task`` finished (``event`` may also mark a start)."""
    root = get_target_root()
    if is_memory_root(root):
        return
    line = f"{event} {type(task).__name__} {task.task_id} {os.getpid()} {time.monotonic():.6f}\n"
    fd = os.open(os.path.join(root, RUNS_LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_runs(root: str, event: str = "done") -> list[tuple[str, str, int, float]]:
    """``(class name, task_id, pid, monotonic time)`` per logged event, in log order."""
    path = os.path.join(root, RUNS_LOG)
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            kind, name, task_id, pid, when = line.split()
            if kind == event:
                out.append((name, task_id, int(pid), float(when)))
    return out


def done_ids(root: str) -> list[str]:
    """The ids of the tasks that finished under ``root``, in log order."""
    return [task_id for _, task_id, _, _ in read_runs(root)]


def assert_counts_add_up(summary: BuildSummary) -> None:
    accounted = (summary.n_previously_complete + summary.n_succeeded + summary.n_failed
                 + summary.n_upstream_failed + summary.n_not_run)
    assert accounted == summary.n_discovered, summary


class Recorder(RegistryABC):
    """A registry that records every event, and the threads it heard them on."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.threads: set[int] = set()

    def _add(self, kind: str, value: Any) -> None:
        self.threads.add(threading.get_ident())
        self.events.append((kind, value))

    def build_start(self, root_tasks):
        self._add("build_start", [t.task_id for t in root_tasks])

    def build_complete(self, summary):
        self._add("build_complete", summary)

    def task_start(self, task):
        self._add("task_start", task.task_id)

    def task_complete(self, task):
        self._add("task_complete", task.task_id)

    def task_fail(self, task, error):
        self._add("task_fail", (task.task_id, error))


def _finish(task: Any, value: Any) -> None:
    if task.fail:
        raise ValueError(f"task {task.task_id} fails on purpose")
    task.output().save(value)
    log_run(task)


def _sum_of(task: Any, tasks: Any) -> int:
    return task.value + sum(dep.output().load() for dep in tasks)


# -- sync family: run() only -------------------------------------------------


class Leaf(AutoTask[int]):
    value: int = 0
    fail: bool = False
    sleep: float = 0.0

    def run(self) -> None:
        log_run(self, "start")
        if self.sleep:
            time.sleep(self.sleep)
        _finish(self, self.value)


class Sum(AutoTask[int]):
    """``value`` plus the outputs of ``deps`` (static dependencies)."""

    deps: tuple[Task, ...] = ()
    value: int = 0
    fail: bool = False
    sleep: float = 0.0

    def requires(self) -> Any:
        return self.deps

    def run(self) -> None:
        log_run(self, "start")
        if self.sleep:
            time.sleep(self.sleep)
        _finish(self, _sum_of(self, self.deps))


class Dynamic(AutoTask[int]):
    """Yields ``n`` leaves, then a ``Sum`` over two more leaves, then sums everything.

    Deterministic, so it honours the process pool's contract (``run()`` is
    re-run from the start and yields the same tasks again).
    """

    leaf: ClassVar[type] = Leaf
    sum: ClassVar[type] = Sum
    n: int = 3
    value: int = 0
    fail: bool = False
    fail_leaf: bool = False

    def first(self) -> list[Task]:
        return [self.leaf(value=1000 * self.value + i, fail=self.fail_leaf and i == 0) for i in range(self.n)]

    def second(self) -> Task:
        leaves = (self.leaf(value=-1), self.leaf(value=-2))
        return self.sum(deps=leaves, value=self.value)

    def run(self) -> Any:
        first = self.first()
        yield first
        for dep in first:  # the generator resumes only once all yielded tasks are complete
            assert dep.complete(), dep
        second = self.second()
        yield second
        _finish(self, _sum_of(self, [*first, second]))


# -- async family: run_aio() only --------------------------------------------


class ALeaf(AutoTask[int]):
    value: int = 0
    fail: bool = False
    sleep: float = 0.0

    async def run_aio(self) -> None:
        log_run(self, "start")
        if self.sleep:
            await asyncio.sleep(self.sleep)
        _finish(self, self.value)


class ASum(AutoTask[int]):
    deps: tuple[Task, ...] = ()
    value: int = 0
    fail: bool = False
    sleep: float = 0.0

    def requires(self) -> Any:
        return self.deps

    async def run_aio(self) -> None:
        log_run(self, "start")
        if self.sleep:
            await asyncio.sleep(self.sleep)
        _finish(self, _sum_of(self, self.deps))


class ADynamic(AutoTask[int]):
    leaf: ClassVar[type] = ALeaf
    sum: ClassVar[type] = ASum
    n: int = 3
    value: int = 0
    fail: bool = False
    fail_leaf: bool = False

    first = Dynamic.first
    second = Dynamic.second

    async def run_aio(self) -> Any:
        first = self.first()
        yield first
        for dep in first:
            assert dep.complete(), dep
        second = self.second()
        yield second
        _finish(self, _sum_of(self, [*first, second]))


class Family:
    """The classes one build configuration uses."""

    def __init__(self, leaf: type, sum_: type, dynamic: type):
        self.Leaf, self.Sum, self.Dynamic = leaf, sum_, dynamic


SYNC = Family(Leaf, Sum, Dynamic)
ASYNC = Family(ALeaf, ASum, ADynamic)


# -- odds and ends -----------------------------------------------------------


class Chain(AutoTask[int]):
    """One link of a chain: ``prev`` is the link below."""

    prev: Task | None = None
    i: int = 0

    def requires(self) -> Any:
        return self.prev if self.prev is not None else ()

    def run(self) -> None:
        self.output().save(self.i)


def chain(n: int) -> Chain:
    task = None
    for i in range(n):
        task = Chain(prev=task, i=i)
    assert task is not None
    return task


class IOBoundTask(AutoTask[dict]):
    """The README's task, verbatim (in a namespace: the README's snippet defines its own, as does benchmarks/)."""

    task_namespace = "tests"
    sleep_duration: float = 0.1

    def run(self) -> None:
        time.sleep(self.sleep_duration)
        self.output().save({"task_id": self.task_id})

    async def run_aio(self) -> None:
        await asyncio.sleep(self.sleep_duration)
        self.output().save({"task_id": self.task_id})


class WhereAmI(AutoTask[dict]):
    """Saves the target root and pid it ran with."""

    tag: str = ""

    def run(self) -> None:
        self.output().save({"root": get_target_root(), "pid": os.getpid()})


class Point(BaseModel):
    x: int
    y: float
    label: str = ""


class Dies(AutoTask[int]):
    """Kills its own worker process, unless ``<root>/allow-<task_id>`` exists.

    ``how``: ``"exit"`` (``os._exit``), ``"sigkill"``, or ``"mid-save"`` (the
    temporary file is written, then the process exits before the rename).
    """

    how: str = "exit"
    deps: tuple[Task, ...] = ()

    def requires(self) -> Any:
        return self.deps

    def run(self) -> None:
        if not os.path.exists(os.path.join(get_target_root(), f"allow-{self.task_id}")):
            if self.how == "exit":
                os._exit(7)
            if self.how == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.how == "mid-save":
                os.replace = lambda *args, **kwargs: os._exit(9)  # only in this doomed worker
        self.output().save(42)
        log_run(self)


def _refuse_to_load() -> None:
    raise RuntimeError("this object cannot be unpickled")


class Unloadable:
    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse_to_load, ())


class BadError(Exception):
    """Pickles, but cannot be unpickled, however exceptions are reduced (tblib, which
    distributed installs, pickles ``__init__``-less exceptions that plain pickle cannot)."""

    def __init__(self, a: Any, b: Any):
        super().__init__(f"{a}/{b}")
        self.payload = Unloadable()


class RaisesUnreadable(AutoTask[int]):
    def run(self) -> None:
        raise BadError(1, 2)


class RaisesUnpicklable(AutoTask[int]):
    def run(self) -> None:
        error = RuntimeError("holds a lambda")
        error.fn = lambda: None  # type: ignore[attr-defined]
        raise error


class SavesLambda(AutoTask[Any]):
    """Its output value cannot be pickled."""

    def run(self) -> None:
        self.output().save(lambda: None)


class YieldsItself(AutoTask[int]):
    def run(self) -> Any:
        yield self
        self.output().save(1)


class CycleA(AutoTask[int]):
    """Yields ``CycleB``, which requires this task: a cycle through a dynamic dependency."""

    def run(self) -> Any:
        yield CycleB()
        self.output().save(1)


class CycleB(AutoTask[int]):
    def requires(self) -> Any:
        return CycleA()

    def run(self) -> None:
        self.output().save(2)


class Golden(AutoTask[int]):
    """A task whose id is hard-coded in test_ids.py: any change of the id scheme shows."""

    task_namespace = "golden"
    task_version = "1"

    count: int = 3
    ratio: float = 0.1
    text: str = "héllo ✓"
    flag: bool = True
    nothing: None = None
    numbers: list[int] = [3, 1, 2]
    mapping: dict[str, int] = {"b": 2, "a": 1}
    tags: frozenset[str] = frozenset({"x", "y", "z", "alpha", "beta"})
    point: Point = Point(x=1, y=2.5, label="p")
    dep: Task | None = None
    deps: tuple[Task, ...] = ()
    named: dict[str, Task] = {}

    def run(self) -> None:
        self.output().save(self.count)


def golden_task() -> Golden:
    leaf = Leaf(value=1)
    return Golden(dep=leaf, deps=(Leaf(value=2), leaf), named={"one": leaf, "zero": Leaf()})


class Fan(AutoTask[dict]):
    """Collects the ``task_id`` saved by each of its ``deps`` (sync only: goes to the pool)."""

    deps: tuple[Task, ...] = ()

    def requires(self) -> Any:
        return self.deps

    def run(self) -> None:
        self.output().save({"ids": sorted(dep.load()["task_id"] for dep in self.deps), "pid": os.getpid()})


class YieldsLocalTask(AutoTask[int]):
    """Yields a task of a class defined inside ``run``: fine in-process, cannot go back from a worker."""

    value: int = 0

    def run(self) -> Any:
        class Local(AutoTask[int]):
            def run(self) -> None:
                self.output().save(1)

        yield Local()
        self.output().save(self.value)


# -- done means done ------------------------------------------------------------


class Silent(AutoTask[int]):
    """Returns from ``run()`` without writing its output."""

    value: int = 0

    def run(self) -> None:
        log_run(self, "start")


class ASilent(AutoTask[int]):
    value: int = 0

    async def run_aio(self) -> None:
        log_run(self, "start")


class SavesThenFails(AutoTask[int]):
    """Saves its output, then fails (a check of the result that did not pass)."""

    value: int = 0

    def run(self) -> None:
        self.output().save(self.value)
        raise ValueError(f"task {self.id} saved, then failed on purpose")


class ASavesThenFails(AutoTask[int]):
    value: int = 0

    async def run_aio(self) -> None:
        self.output().save(self.value)
        raise ValueError(f"task {self.id} saved, then failed on purpose")


class Yields(AutoTask[int]):
    """Yields ``deps`` (dynamic dependencies), then saves how many there were."""

    deps: tuple[Task, ...] = ()

    def run(self) -> Any:
        log_run(self, "start")
        yield self.deps
        self.output().save(len(self.deps))
        log_run(self)


class AYields(AutoTask[int]):
    deps: tuple[Task, ...] = ()

    async def run_aio(self) -> Any:
        log_run(self, "start")
        yield self.deps
        self.output().save(len(self.deps))
        log_run(self)


class CompleteOnlyIn(AutoTask[int]):
    """Complete only in the process ``pid`` (as if its output were on that machine's disk alone)."""

    pid: int = 0

    def complete(self) -> bool:
        return os.getpid() == self.pid

    def run(self) -> None:
        self.output().save(self.pid)


class NoOutputTask(Task):
    """Writes nothing and declares no output: done when ``run()`` returns."""

    value: int = 0

    def run(self) -> None:
        log_run(self)


class YieldsSomethingNew(AutoTask[int]):
    """Yields a leaf never seen before on every run: breaks the re-run contract of worker processes."""

    def run(self) -> Any:
        log_run(self, "start")
        yield Leaf(value=time.time_ns())
        self.output().save(1)


class FileIO(AutoTask[dict]):
    """Writes its output through ``open("w")`` and reads its dependencies' through ``open("r")``."""

    deps: tuple[Task, ...] = ()
    value: int = 0

    def requires(self) -> Any:
        return self.deps

    def run(self) -> None:
        inputs = []
        for dep in self.deps:
            with dep.output().open("r") as f:
                inputs.append(json.loads(f.read())["value"])
        with self.output().open("w") as f:
            f.write(json.dumps({"value": self.value + sum(inputs)}))
        log_run(self)


class AFileIO(FileIO):
    """``FileIO`` through ``open_aio``."""

    async def run_aio(self) -> None:
        inputs = []
        for dep in self.deps:
            async with dep.output().open_aio("r") as f:
                inputs.append(json.loads(await f.read())["value"])
        async with self.output().open_aio("w") as f:
            await f.write(json.dumps({"value": self.value + sum(inputs)}))
        log_run(self)


class SlowWriter(AutoTask[str]):
    """Writes half its output through ``open("w")``, then waits a minute before finishing."""

    def run(self) -> None:
        with self.output().open("w") as f:
            f.write("half")
            f.flush()
            time.sleep(60)
            f.write(" and the rest")


class Gated(AutoTask[int]):
    """Logs its start, then waits for ``<root>/release`` (up to 60 s) before it saves: the test says when it ends."""

    value: int = 0
    fail: bool = False
    deps: tuple[Task, ...] = ()

    def requires(self) -> Any:
        return self.deps

    def run(self) -> None:
        log_run(self, "start")
        release = os.path.join(get_target_root(), "release")
        deadline = time.monotonic() + 60
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.01)
        _finish(self, self.value)


class RaisesWorkerOnlyError(AutoTask[int]):
    """Raises an exception whose class only its worker can import: it pickles there, but not back here."""

    def run(self) -> None:
        directory = os.path.join(get_target_root(), f"worker-only-{os.getpid()}")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "worker_only_errors.py"), "w") as f:
            f.write("class WorkerOnlyError(Exception):\n    pass\n")
        sys.path.insert(0, directory)
        from worker_only_errors import WorkerOnlyError  # type: ignore[import-not-found]

        raise WorkerOnlyError("only the worker knows this class")
