"""DAG shapes for the benchmarks, each with the plain graph the ideal is computed from.

Static DAGs (work per task from the workload):

- ``tree``: 15 tasks, 8 leaves -> 4 middle -> 2 intermediate -> 1 root.
- ``flat``: 33 tasks, 32 leaves -> 1 root (high concurrency).
- ``flat_many``: 101 tasks, 100 leaves -> 1 root.
- ``flat_17``: 17 tasks, 16 leaves -> 1 root (the file read/write scenario).
- ``heavy``: 5 tasks, 4 leaves -> 1 root (the heavy CPU scenario).

- ``dynamic_flat``: 9 tasks; the root yields its 8 leaves when it runs (the seed's shape).

Light scaling families (100 to 100,000 tasks): ``fan_in`` (n - 1 leaves -> 1 root)
and ``chain`` (each task needs the previous one).

Building a DAG imports stardag; this module itself does not, so the suite imports
on commits without the library.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dag:
    """What to build, and its shape as index lists for the ideal makespan.

    ``tasks`` are in dependency order (every task after its dependencies);
    ``deps[i]`` are the indices of the tasks task ``i`` needs. Dynamic
    dependencies are included, as the build will discover them.
    """

    name: str
    roots: tuple[Any, ...]
    tasks: tuple[Any, ...]
    deps: tuple[tuple[int, ...], ...]

    @property
    def n_tasks(self) -> int:
        return len(self.deps)


class _Builder:
    """Collects tasks and their dependency indices in creation (= dependency) order."""

    def __init__(self) -> None:
        self.tasks: list[Any] = []
        self.deps: list[tuple[int, ...]] = []
        self._index: dict[int, int] = {}

    def add(self, task: Any, deps: tuple[Any, ...] = ()) -> Any:
        self._index[id(task)] = len(self.tasks)
        self.tasks.append(task)
        self.deps.append(tuple(self._index[id(d)] for d in deps))
        return task

    def dag(self, name: str, roots: tuple[Any, ...]) -> Dag:
        return Dag(name, roots, tuple(self.tasks), tuple(self.deps))


def tree(cls: type) -> Dag:
    """15 tasks: 8 leaves, 4 middle, 2 intermediate, 1 root (binary in-tree)."""
    b = _Builder()
    level = [b.add(cls(index=i)) for i in range(8)]
    index = 8
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level), 2):
            pair = (level[j], level[j + 1])
            nxt.append(b.add(cls(deps=pair, index=index), pair))
            index += 1
        level = nxt
    return b.dag("tree", (level[0],))


def fan_in(cls: type, n_tasks: int, name: str = "fan_in", **params: Any) -> Dag:
    """``n_tasks - 1`` independent leaves, then one root that needs them all.

    ``params`` go to every task (e.g. ``sleep_duration``).
    """
    b = _Builder()
    leaves = tuple(b.add(cls(index=i, **params)) for i in range(n_tasks - 1))
    root = b.add(cls(deps=leaves, index=n_tasks - 1, **params), leaves)
    return b.dag(name, (root,))


def flat(cls: type) -> Dag:
    """33 tasks: 32 leaves that can all run at once, 1 root."""
    return fan_in(cls, 33, name="flat")


def flat_many(cls: type, **params: Any) -> Dag:
    """101 tasks: 100 leaves, 1 root."""
    return fan_in(cls, 101, name="flat_many", **params)


def flat_17(cls: type) -> Dag:
    """17 tasks: 16 leaves, 1 root."""
    return fan_in(cls, 17, name="flat_17")


def heavy(cls: type) -> Dag:
    """5 tasks: 4 leaves, 1 root (sized for ~1 s tasks)."""
    return fan_in(cls, 5, name="heavy")


def chain(cls: type, n_tasks: int) -> Dag:
    """``n_tasks`` in a line: no concurrency, the longest discovery walk."""
    b = _Builder()
    prev = b.add(cls(index=0))
    for i in range(1, n_tasks):
        prev = b.add(cls(deps=(prev,), index=i), (prev,))
    return b.dag("chain", (prev,))


def dynamic_flat(dynamic_cls: type, n_leaves: int = 8) -> Dag:
    """A root that yields its ``n_leaves`` leaves when run: ``n_leaves + 1`` tasks."""
    b = _Builder()
    root = dynamic_cls(index=0, n_leaves=n_leaves)
    leaves = tuple(b.add(leaf) for leaf in root.leaves())
    return b.dag("dynamic_flat", (b.add(root, leaves),))


def light_class(async_tasks: bool) -> type:
    from benchmarks import tasks

    return tasks.AsyncLightTask if async_tasks else tasks.LightTask


@functools.lru_cache(maxsize=8)
def light_family(shape: str, n_tasks: int, async_tasks: bool) -> Dag:
    """A light scaling DAG, cached per process: 100,000 tasks take seconds to create.

    Reusing the task objects is safe: outputs are looked up under the target
    root in force, and every timed build uses a fresh root.
    """
    cls = light_class(async_tasks)
    if shape == "fan_in":
        return fan_in(cls, n_tasks)
    if shape == "chain":
        return chain(cls, n_tasks)
    raise ValueError(f"unknown light DAG shape {shape!r}; use 'fan_in' or 'chain'")
