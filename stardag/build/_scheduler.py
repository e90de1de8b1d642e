"""The scheduler core: which tasks are ready. Pure state, no I/O, no threads.

Shaped like ``graphlib.TopologicalSorter``: each node counts its unmet
dependencies; ``done`` touches each outgoing edge once; ready ids wait in a
deque, so no step ever scans all nodes. ``extend`` is the one hook for
dynamic dependencies. Cycle search walks an explicit stack.

An executor that orders tasks itself (Dask) may be handed a task before its
dependencies are done (``start_early``), when they all run there; if it comes
back not run (a dependency failed or must run again), ``requeue`` puts it back.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

__all__ = ["DONE", "FAILED", "READY", "RUNNING", "Scheduler", "UPSTREAM_FAILED", "WAITING"]

WAITING, READY, RUNNING, DONE, FAILED, UPSTREAM_FAILED = range(6)
_FINISHED = (DONE, FAILED, UPSTREAM_FAILED)


class _Node:
    __slots__ = ("task_id", "n_waiting", "deps", "dependents", "state")

    def __init__(self, task_id: str):
        self.task_id = task_id
        self.n_waiting = 0
        self.deps: list[str] = []
        self.dependents: list[_Node] = []
        self.state = WAITING


class Scheduler:
    """Tracks tasks and hands out each ready task id once."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}
        self._ready: deque[str] = deque()
        self.n_unfinished = 0
        self.n_upstream_failed = 0

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def state(self, task_id: str) -> int:
        return self._nodes[task_id].state

    def add(self, task_id: str, dep_ids: Iterable[str]) -> int:
        """Add a task waiting on ``dep_ids`` (tasks added earlier); return its state.

        Dependencies that are done do not count; a failed one makes the new
        task ``UPSTREAM_FAILED`` at once.
        """
        if task_id in self._nodes:
            raise ValueError(f"task {task_id!r} was already added")
        node = self._nodes[task_id] = _Node(task_id)
        self.n_unfinished += 1
        self._wait_on(node, dep_ids)
        return node.state

    def add_failed(self, task_id: str) -> None:
        """Add a task that failed before it could run; tasks added later that need it are upstream-failed."""
        if task_id in self._nodes:
            raise ValueError(f"task {task_id!r} was already added")
        self._nodes[task_id] = _Node(task_id)
        self._nodes[task_id].state = FAILED

    def extend(self, task_id: str, dep_ids: Iterable[str]) -> int:
        """A running task now also waits on ``dep_ids``; return its new state."""
        node = self._nodes[task_id]
        if node.state != RUNNING:
            raise ValueError(f"task {task_id!r} is not running, it cannot wait on more tasks")
        node.state = WAITING
        self._wait_on(node, dep_ids)
        return node.state

    def _wait_on(self, node: _Node, dep_ids: Iterable[str]) -> None:
        nodes = self._nodes
        failed = False
        for dep_id in dep_ids:
            dep = nodes[dep_id]
            state = dep.state
            if state == DONE:
                continue
            node.deps.append(dep_id)
            if state == FAILED or state == UPSTREAM_FAILED:
                failed = True
            else:
                node.n_waiting += 1
                dep.dependents.append(node)
        if failed:
            self._mark_upstream_failed(node)
            self._propagate_failure(node)
        elif node.n_waiting == 0:
            node.state = READY
            self._ready.append(node.task_id)

    def pop_ready(self) -> str | None:
        """The next ready task id (now running), or ``None``."""
        if not self._ready:
            return None
        task_id = self._ready.popleft()
        self._nodes[task_id].state = RUNNING
        return task_id

    def has_ready(self) -> bool:
        return bool(self._ready)

    def waiting_dependents(self, task_id: str) -> list[str]:
        """The dependents of ``task_id`` still waiting on some dependency."""
        return list(dict.fromkeys(n.task_id for n in self._nodes[task_id].dependents if n.state == WAITING))

    def unmet(self, task_id: str) -> list[str]:
        """The dependencies of ``task_id`` not done yet."""
        nodes = self._nodes
        return list(dict.fromkeys(d for d in self._nodes[task_id].deps if nodes[d].state != DONE))

    def start_early(self, task_id: str) -> None:
        """Hand out a waiting task whose dependencies run where it will (it is now running)."""
        node = self._nodes[task_id]
        if node.state != WAITING:
            raise ValueError(f"task {task_id!r} is not waiting, it cannot start early")
        node.state = RUNNING

    def requeue(self, task_id: str) -> int:
        """A task started early did not run: it waits again, is ready, or is upstream-failed (returned)."""
        node = self._nodes[task_id]
        if node.state != RUNNING:
            raise ValueError(f"task {task_id!r} is not running, it cannot be requeued")
        nodes = self._nodes
        if any(nodes[d].state in (FAILED, UPSTREAM_FAILED) for d in node.deps):
            self._mark_upstream_failed(node)
            self._propagate_failure(node)
        elif node.n_waiting == 0:
            node.state = READY
            self._ready.append(task_id)
        else:
            node.state = WAITING
        return node.state

    def done(self, task_id: str) -> None:
        """Mark a running task done; dependents with no unmet dependency become ready."""
        node = self._nodes[task_id]
        if node.state != RUNNING:
            raise ValueError(f"task {task_id!r} is not running, it cannot be marked done")
        node.state = DONE
        self.n_unfinished -= 1
        ready = self._ready
        for dependent in node.dependents:
            dependent.n_waiting -= 1
            if dependent.n_waiting == 0 and dependent.state == WAITING:
                dependent.state = READY
                ready.append(dependent.task_id)
        node.dependents = []

    def failed(self, task_id: str) -> list[str]:
        """Mark a running task failed; return the ids now ``UPSTREAM_FAILED``."""
        node = self._nodes[task_id]
        if node.state != RUNNING:
            raise ValueError(f"task {task_id!r} is not running, it cannot be marked failed")
        node.state = FAILED
        self.n_unfinished -= 1
        return self._propagate_failure(node)

    def _propagate_failure(self, node: _Node) -> list[str]:
        marked: list[str] = []
        stack = list(node.dependents)
        node.dependents = []
        while stack:
            dependent = stack.pop()
            if dependent.state != WAITING:
                continue
            self._mark_upstream_failed(dependent)
            marked.append(dependent.task_id)
            stack.extend(dependent.dependents)
            dependent.dependents = []
        return marked

    def _mark_upstream_failed(self, node: _Node) -> None:
        node.state = UPSTREAM_FAILED
        self.n_unfinished -= 1
        self.n_upstream_failed += 1

    def cancel(self) -> list[str]:
        """Stop handing out work; return the ids of unfinished tasks not running."""
        self._ready.clear()
        return [n.task_id for n in self._nodes.values() if n.state in (WAITING, READY)]

    def find_cycle(self) -> list[str] | None:
        """A cycle among unfinished tasks as ``[a, b, ..., a]`` (a waits on b ...), or ``None``."""
        nodes = self._nodes
        color: dict[str, int] = {}  # 1 = on the current path, 2 = explored
        for start, start_node in nodes.items():
            if start in color or start_node.state != WAITING:
                continue
            path = [start]
            iters = [iter(start_node.deps)]
            color[start] = 1
            while iters:
                for dep_id in iters[-1]:
                    dep = nodes[dep_id]
                    if dep.state in _FINISHED:
                        continue
                    seen = color.get(dep_id)
                    if seen == 1:
                        return path[path.index(dep_id):] + [dep_id]
                    if seen is None:
                        color[dep_id] = 1
                        path.append(dep_id)
                        iters.append(iter(dep.deps))
                        break
                else:
                    color[path.pop()] = 2
                    iters.pop()
        return None
