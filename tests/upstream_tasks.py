"""A task module written as a user of upstream stardag writes one, unchanged.

``auto_namespace`` at the top, a declared ``task_id: str`` label on every task,
dependencies as ``tuple[stardag.SubClass[stardag.Task], ...]``, ``requires() ->
stardag.TaskStruct``, outputs written and read through ``output().open()`` and
``open_aio()`` (``"w"`` and ``"r"``). Importable, so process-pool and Dask workers load it;
:func:`dag` builds a small DAG of every kind here, :func:`expected` says what
its root's output must be.
"""

import asyncio
import json

import stardag as sd

sd.auto_namespace(__name__)


class Leaf(sd.AutoTask[dict]):
    """Writes its label and value through ``open("w")``."""

    task_id: str
    value: int = 0
    fail: bool = False

    def run(self) -> None:
        if self.fail:
            raise ValueError(f"{self.task_id} fails on purpose")
        with self.output().open("w") as f:
            f.write(json.dumps({"task_id": self.task_id, "value": self.value}))


class AsyncLeaf(sd.AutoTask[dict]):
    """The same through ``open_aio("w")`` on the event loop."""

    task_id: str
    value: int = 0

    async def run_aio(self) -> None:
        await asyncio.sleep(0)
        async with self.output().open_aio("w") as f:
            await f.write(json.dumps({"task_id": self.task_id, "value": self.value}))


class Combine(sd.AutoTask[dict]):
    """Reads every dependency through ``open("r")``; any task class may be a dependency."""

    task_id: str
    deps: tuple[sd.SubClass[sd.Task], ...] = ()
    named: dict[str, sd.SubClass[sd.Task]] = {}

    def requires(self) -> sd.TaskStruct:
        return {"deps": list(self.deps), "named": self.named}

    def run(self) -> None:
        inputs = {}
        for dep in [*self.deps, *self.named.values()]:
            with dep.output().open("r") as f:
                data = json.load(f)
            inputs[data["task_id"]] = data["value"]
        self.output().save({"task_id": self.task_id, "value": sum(inputs.values()), "inputs": inputs})


class Expand(sd.AutoTask[dict]):
    """Yields ``n`` leaves (dynamic dependencies), then reads them back."""

    task_id: str
    n: int = 2

    def leaves(self) -> list[Leaf]:
        return [Leaf(task_id=f"{self.task_id}-leaf-{i}", value=i) for i in range(self.n)]

    def run(self):
        leaves = self.leaves()
        yield leaves
        total = 0
        for leaf in leaves:
            with leaf.output().open("r") as f:
                total += json.load(f)["value"]
        self.output().save({"task_id": self.task_id, "value": total})


class Report(sd.AutoTask[str]):
    """Reads any task's output through ``open_aio("r")`` and writes one line about it."""

    task_id: str
    source: sd.SubClass[sd.Task]

    def requires(self) -> sd.TaskStruct:
        return self.source

    async def run_aio(self) -> None:
        async with self.source.output().open_aio("r") as f:
            data = json.loads(await f.read())
        async with self.output().open_aio("w") as f:
            await f.write(json.dumps(f"{data['task_id']}={data['value']}"))


def dag(async_leaf: bool = True, fail: bool = False) -> Combine:
    """A root over a leaf, an async leaf (or a second sync one), a nested Combine and an Expand."""
    first = Leaf(task_id="first", value=1, fail=fail)
    second = AsyncLeaf(task_id="second", value=2) if async_leaf else Leaf(task_id="second", value=2)
    inner = Combine(task_id="inner", deps=(first, second))
    return Combine(task_id="root", deps=(inner, Expand(task_id="expand", n=3)), named={"again": first})


def expected() -> dict:
    """What ``dag()``'s root saves."""
    return {"task_id": "root", "value": 3 + 3 + 1, "inputs": {"inner": 3, "expand": 3, "first": 1}}
