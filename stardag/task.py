"""Tasks: immutable pydantic models with a deterministic ``task_id``.

A task's parameters are its pydantic fields; a field may hold other tasks (or
tuples, lists and dicts of them). ``requires()`` names what must be built first,
``run()`` and/or ``async run_aio()`` do the work and save to ``output()``.
A ``run()`` (or ``run_aio()``) that is a generator may ``yield`` tasks: dynamic
dependencies, built before it resumes.

Tasks pickle as a flat list of records, not a nested tree, so a chain of any
depth crosses to a worker process without hitting the recursion limit.
"""

from __future__ import annotations

import pickle
from typing import Any, ClassVar, Generic, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

from ._ids import canonical_params, make_task_id, map_tasks
from .target import get_target_root, make_target, serializer_for

__all__ = ["AutoTask", "Task", "flatten_tasks"]

T = TypeVar("T")


class Task(BaseModel):
    """A unit of work identified by its class and parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_namespace: ClassVar[str] = ""
    task_version: ClassVar[str] = ""

    _task_id: str = PrivateAttr(default="")
    _output: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        # Dependencies are built before their dependents, so their ids are
        # already cached: hashing never recurses down the graph.
        params = canonical_params(self.__dict__, Task)
        cls = type(self)
        self.__pydantic_private__["_task_id"] = make_task_id(
            cls.task_namespace, cls.__name__, cls.task_version, params
        )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        """A copy; with ``update``, a new task: validated, with its own id and output."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            # pydantic copies private attributes (the id, the cached output) as they were.
            copied = type(self)(**copied.__dict__)
        return copied

    @property
    def id(self) -> str:
        """The task's identity: a hash of its class and parameter values (32 hex digits)."""
        return self.__pydantic_private__["_task_id"]

    @property
    def task_id(self) -> str:
        """The same as :attr:`id`."""
        return self.__pydantic_private__["_task_id"]

    def requires(self) -> Any:
        """Tasks to complete first: a task or a nested tuple/list/dict of tasks."""
        return ()

    def run(self) -> Any:
        """Do the work (sync). May be a generator yielding dynamic dependencies."""
        raise NotImplementedError

    async def run_aio(self) -> Any:
        """Do the work on the event loop. May be an async generator of dependencies."""
        raise NotImplementedError

    def output(self) -> Any:
        """The target this task writes; ``None`` when it writes nothing."""
        return None

    def complete(self) -> bool:
        """Whether the output exists (a task without output is never complete)."""
        target = self.output()
        return target is not None and target.exists()

    def __hash__(self) -> int:
        return hash(self.__pydantic_private__["_task_id"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        return type(self) is type(other) and self.id == other.id

    def __repr__(self) -> str:
        parts = [f"{name}={_short(value)}" for name, value in self.__dict__.items()]
        text = f"{type(self).__name__}({', '.join(parts)})"
        return text if len(text) <= 200 else text[:196] + "...)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (_flatten(self),))


def _short(value: Any) -> str:
    if isinstance(value, Task):
        return f"<{type(value).__name__} {value.id[:8]}>"
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Task):
        return f"[{len(value)} tasks]"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def task_has_run(cls: type[Task]) -> bool:
    return cls.run is not Task.run


def task_has_run_aio(cls: type[Task]) -> bool:
    return cls.run_aio is not Task.run_aio


def flatten_tasks(value: Any) -> list[Task]:
    """The tasks in a task or a nested tuple/list/dict of tasks, in order."""
    if isinstance(value, Task):
        return [value]
    if value is None:
        return []
    out: list[Task] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Task):
            out.append(item)
        elif isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif item is not None:
            raise TypeError(
                f"expected a task or a tuple/list/dict of tasks, got {type(item).__name__}: {item!r}"
            )
    return out


class _Ref:
    """Stands for the n-th task of a flattened graph while pickling."""

    __slots__ = ("n",)

    def __init__(self, n: int):
        self.n = n

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Ref, (self.n,))


def _param_tasks(task: Task) -> list[Task]:
    found: list[Task] = []
    for value in task.__dict__.values():
        if isinstance(value, Task):
            found.append(value)
        elif isinstance(value, (tuple, list, dict)):
            map_tasks(value, found.append, Task)
    return found


def _flatten(root: Task, known: Any = ()) -> list[tuple[Any, ...]]:
    """Records (class, fields with tasks as refs, fields_set, task_id), dependencies first.

    A task whose id is in ``known`` (already sent to the receiver) becomes the
    record ``(None, None, None, task_id)`` and is not walked.
    """
    index: dict[str, int] = {}
    records: list[tuple[Any, ...]] = []
    stack: list[tuple[Task, bool]] = [(root, False)]
    while stack:
        task, expanded = stack.pop()
        task_id = task.id
        if task_id in index:
            continue
        if task_id in known:
            index[task_id] = len(records)
            records.append((None, None, None, task_id))
            continue
        if not expanded:
            stack.append((task, True))
            stack.extend((dep, False) for dep in _param_tasks(task) if dep.id not in index)
            continue

        def ref(t: Task) -> _Ref:
            return _Ref(index[t.id])

        fields = {k: map_tasks(v, ref, Task) for k, v in task.__dict__.items()}
        index[task_id] = len(records)
        records.append((type(task), fields, task.__pydantic_fields_set__, task_id))
    return records


def _rebuild(records: list[tuple[Any, ...]], cache: dict[str, Task] | None = None) -> Task:
    """The last record's task; ``cache`` resolves known records and learns the new ones."""
    built: list[Task] = []
    for cls, fields, fields_set, task_id in records:
        if cls is None:
            built.append(cache[task_id])  # type: ignore[index]
            continue
        obj = cls.__new__(cls)
        values = {k: map_tasks(v, lambda r: built[r.n], _Ref) for k, v in fields.items()}
        obj.__setstate__(
            {
                "__dict__": values,
                "__pydantic_fields_set__": fields_set,
                "__pydantic_extra__": None,
                "__pydantic_private__": {"_task_id": task_id, "_output": None},
            }
        )
        built.append(obj)
    if cache is not None:
        cache.update((task.id, task) for task in built)
    return built[-1]


def dumps_for(task: Task, known: set[str]) -> bytes:
    """Pickle ``task`` for a receiver that already holds the tasks in ``known``; update it.

    Sending each task of a graph to a worker this way costs O(graph) in all,
    where pickling every task whole costs O(depth) each (quadratic on a chain).
    """
    records = _flatten(task, known)
    data = pickle.dumps(records, pickle.HIGHEST_PROTOCOL)
    known.update(record[3] for record in records)
    return data


def loads_into(data: bytes, cache: dict[str, Task]) -> Task:
    """Unpickle what :func:`dumps_for` made, resolving and extending ``cache``."""
    return _rebuild(pickle.loads(data), cache)


def _output_type(cls: type) -> Any:
    """The ``T`` of ``AutoTask[T]`` that ``cls`` derives from (Any if none); see ``_serializer``'s cache."""
    for klass in cls.__mro__:
        meta = getattr(klass, "__pydantic_generic_metadata__", None)
        if meta and meta["origin"] is AutoTask and meta["args"]:
            return meta["args"][0]
    return Any


class AutoTask(Task, Generic[T]):
    """A task whose output is a target derived from its id, serialised by ``T``.

    JSON for JSON types, pydantic JSON for models, pickle for anything else. The
    path is ``<root>/<namespace or 'default'>/<ClassName>/<id[:2]>/<id>.<ext>``.
    """

    def output(self) -> Any:
        root = get_target_root()
        private = self.__pydantic_private__
        cached = private["_output"]
        if cached is not None and cached[0] == root:
            return cached[1]
        cls = type(self)
        task_id = private["_task_id"]
        relpath = f"{cls.task_namespace or 'default'}/{cls.__name__}/{task_id[:2]}/{task_id}"
        target = make_target(root, relpath, _serializer(cls), self)
        private["_output"] = (root, target)
        return target

    def load(self) -> T:
        """The saved output value."""
        return self.output().load()


_serializers: dict[type, Any] = {}


def _serializer(cls: type) -> Any:
    try:
        return _serializers[cls]
    except KeyError:
        serializer = _serializers[cls] = serializer_for(_output_type(cls))
        return serializer
