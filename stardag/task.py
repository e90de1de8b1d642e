"""Tasks: immutable pydantic models identified by ``id``, a hash of their class and parameters.

A task's parameters are its pydantic fields; a field may hold other tasks (or
tuples, lists and dicts of them, or models holding them). Lists, dicts and sets
are frozen at construction, so a task's id always matches its parameters (see
``_ids.py`` for the encoding). ``requires()`` names what must be built first,
``run()`` and/or ``async run_aio()`` do the work and save to ``output()``.
A ``run()`` (or ``run_aio()``) that is a generator may ``yield`` tasks: dynamic
dependencies, built before it resumes.

A class's namespace (``task_namespace``, or the module's name after
``auto_namespace(__name__)``) and qualified name make its part of the id; the
namespace and name make its output directory: both must be safe as one path
component, and no two classes from different modules may share them.

Tasks pickle as a flat list of records, not a nested tree, so a chain of any
depth crosses to a worker process without hitting the recursion limit.
"""

from __future__ import annotations

import inspect
import os
import pickle
import sys
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, ForwardRef, Generic, Mapping, TypeVar, Union

from pydantic import BaseModel, ConfigDict, SerializeAsAny, WrapValidator

from ._ids import (
    UnencodableValue,
    canonical_params,
    dumps,
    encode,
    field_encoder,
    freeze,
    make_task_id,
    map_tasks,
    register_task_type,
    type_name,
)
from .errors import TaskDefinitionError
from .target import get_target_root, make_target, serializer_for

__all__ = ["AutoTask", "SubClass", "Task", "TaskStruct", "auto_namespace", "check_unchanged", "flatten_tasks"]

T = TypeVar("T")
# pydantic 2.11+ validates input keyed by field names even where fields have aliases.
_BY_NAME = {"by_name": True} if "by_name" in inspect.signature(BaseModel.model_validate).parameters else {}


class Task(BaseModel):
    """A unit of work identified by its class and parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_namespace: ClassVar[str] = ""
    task_version: ClassVar[str] = ""
    # {field: encoder} for fields whose declared type fixes tuples or sets inside (see _ids.field_encoder).
    # None until the class is complete (a forward reference resolved later).
    __stardag_encoders__: ClassVar[dict[str, Any] | None] = {}

    # ``__pydantic_private__`` holds "_task_id", "_output" (the cached target) and
    # "_watch" (fields holding a copy of a model whose class is not frozen:
    # {name: canonical JSON at construction}). They are set in model_post_init,
    # not declared as PrivateAttr: pydantic's private-attribute set-up cost more
    # than the rest of hashing a task.

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _define(cls)

    def model_post_init(self, context: Any, /) -> None:
        # Dependencies are built before their dependents, so their ids are
        # already cached: hashing never recurses down the graph.
        cls = type(self)
        fields = self.__dict__
        mutable: list[Any] = []
        watched = None
        try:
            for name, value in fields.items():
                frozen = freeze(value, mutable)
                if frozen is not value:
                    fields[name] = frozen
                    if mutable:
                        watched = [*(watched or ()), name]
                        mutable.clear()
            encoders = cls.__stardag_encoders__
            if encoders is None:  # defined with unresolved forward references: they are resolved now
                encoders = _field_encoders(cls)
            params = canonical_params(fields, encoders)
        except UnencodableValue as exc:
            raise _unencodable_error(cls, exc) from None
        except RecursionError:
            raise TaskDefinitionError(f"a parameter of task {cls.__qualname__} is nested too deeply "
                                      f"(or contains itself)") from None
        private = {
            "_task_id": make_task_id(cls.task_namespace, cls.__qualname__, cls.task_version, params),
            "_output": None,
            "_watch": {name: dumps(encode(fields[name])) for name in watched} if watched else None,
        }
        if self.__pydantic_private__ is None:
            object.__setattr__(self, "__pydantic_private__", private)
        else:  # the subclass declares private attributes of its own
            self.__pydantic_private__.update(private)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        """A copy; with ``update``, a new task: validated, with its own id and output."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            # pydantic copies private attributes (the id, the cached output) as they were.
            # By field name: a field with an alias would not take its name as a keyword.
            copied = type(self).model_validate(dict(copied.__dict__), **_BY_NAME)
        return copied

    @property
    def id(self) -> str:
        """The task's identity: a hash of its class and parameter values (32 hex digits)."""
        return self.__pydantic_private__["_task_id"]

    if TYPE_CHECKING:

        @property
        def task_id(self) -> str:
            """The id, unless the class declares a field ``task_id`` (a label)."""

    else:

        def __getattr__(self, name: str) -> Any:
            # Reached only when normal lookup fails: a declared field ``task_id``
            # (in the instance's __dict__) wins, so it is a plain parameter, and a
            # class attribute here would make pydantic warn that the field shadows it.
            if name == "task_id":
                return self.__pydantic_private__["_task_id"]
            return super().__getattr__(name)

    def requires(self) -> TaskStruct:
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
        check_unchanged(self)
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


_Struct = ForwardRef("TaskStruct", module=__name__)  # resolvable from any module (typing.get_type_hints)
TaskStruct = Union[Task, list[_Struct], tuple[_Struct, ...], dict[str, _Struct]]
"""What ``requires()`` returns: a task, or nested lists, tuples and dicts of tasks."""

register_task_type(Task, lambda task: {"__stardag_task_id__": task.__pydantic_private__["_task_id"]})


def _keep_instance(value: Any, handler: Any) -> Any:
    result = handler(value)
    # A model class may revalidate instances into itself: keep the subclass instance given.
    if result is not value and isinstance(value, type(result)):
        return value
    return result


SubClass = Annotated[T, WrapValidator(_keep_instance), SerializeAsAny()]
"""``SubClass[Base]``: a field holding an instance of ``Base`` or of any subclass, kept as given.

The concrete class and all its fields are kept, and count for the id; they
are also serialised (``model_dump``) as the subclass, not as ``Base``.
"""


# -- class identity: namespace and name ---------------------------------------

_auto_namespaces: dict[str, str] = {}
_classes: dict[tuple[str, str], tuple[type, str | None]] = {}  # (namespace, name) -> (class, its file)


def auto_namespace(scope: str) -> None:
    """Give tasks defined from now on in module ``scope`` (and its submodules) the namespace ``scope``.

    Call it at the top of a module as ``stardag.auto_namespace(__name__)``. A
    class that sets ``task_namespace`` itself keeps its own. In a script the
    namespace is ``__main__``, also in the worker processes that import the
    script again as ``__mp_main__`` (spawn, forkserver, Dask).

    Raises:
        TaskDefinitionError: ``scope`` is not a str safe as a path component.
    """
    _check_part("namespace", scope, f"auto_namespace({scope!r})")
    # multiprocessing's name for the main script in a worker it starts: the same tasks,
    # so the same ids and outputs as in the script's own process.
    _auto_namespaces[scope] = "__main__" if scope == "__mp_main__" else scope


def _namespace_for(module: str) -> str | None:
    while module:
        if module in _auto_namespaces:
            return _auto_namespaces[module]
        module = module.rpartition(".")[0]
    return None


_MAX_PART_BYTES = 255


def _check_part(what: str, value: Any, owner: str) -> None:
    """Refuse a namespace or class name that would not stay one directory under the target root."""
    if not isinstance(value, str):
        raise TaskDefinitionError(f"the {what} of {owner} must be a str, got {type(value).__name__}: {value!r}")
    reason = None
    if not value and what == "name":
        reason = "is empty"
    elif len(value.encode("utf-8", "surrogatepass")) > _MAX_PART_BYTES:
        reason = f"is longer than {_MAX_PART_BYTES} bytes (the limit of a file name)"
    elif "/" in value or "\\" in value:
        reason = "contains a path separator"
    elif "\0" in value:
        reason = "contains a NUL character"
    elif ".." in value or value == ".":
        reason = "contains '..' (or is '.')"
    elif ":" in value:
        reason = "contains ':' (a drive on Windows)"
    elif os.path.isabs(value):
        reason = "is an absolute path"
    if reason:
        raise TaskDefinitionError(
            f"the {what} {value!r} of {owner} {reason}: it names a directory of the task's outputs "
            "under the target root; use letters, digits, '_', '-' and single dots"
        )


def _module_file(cls: type) -> str | None:
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return os.path.realpath(path) if path else None


def _define(cls: type[Task]) -> None:
    """Check and record a new task class (from ``__pydantic_init_subclass__``)."""
    owner = f"task class {type_name(cls)}"
    if "task_namespace" not in cls.__dict__:
        namespace = _namespace_for(cls.__module__)
        if namespace is not None:
            cls.task_namespace = namespace
    _check_part("namespace", cls.task_namespace, owner)
    _check_part("name", cls.__name__, owner)
    if not isinstance(cls.task_version, str):
        raise TaskDefinitionError(f"the task_version of {owner} must be a str, got {cls.task_version!r}")
    config = cls.model_config
    if not config.get("frozen", False):
        raise TaskDefinitionError(
            f"{owner} sets model_config frozen=False: a parameter assigned after the task's id was "
            "computed would leave the id (and the output) of the old value; keep tasks frozen and "
            "make a new task instead (task.model_copy(update=...))"
        )
    if config.get("extra") == "allow":
        raise TaskDefinitionError(
            f"{owner} sets model_config extra='allow': undeclared parameters would not count for the "
            "task's id, so tasks doing different work would share it; declare every parameter as a field"
        )
    if "id" in cls.__pydantic_fields__:
        raise TaskDefinitionError(f"{owner} declares a field 'id', which would hide the task's id: rename it")
    # A field's declared type decides its encoding, so it is read once the class is complete:
    # read earlier, an unresolved forward reference would give another id than the same class
    # defined after what it refers to (which one a process got would follow import order).
    cls.__stardag_encoders__ = _field_encoders(cls) if cls.__pydantic_complete__ else None
    if cls.__module__ == __name__ or cls.__pydantic_generic_metadata__["origin"] is not None:
        return  # stardag's own bases, and parametrisations like MyTask[int] of a recorded class
    # By qualified name: Outer.Load and Other.Load in one module are two classes (their ids
    # differ too), while a class defined again under its own name replaces the old one.
    key, file = (cls.task_namespace, cls.__qualname__), _module_file(cls)
    other, other_file = _classes.get(key, (None, None))
    if other is not None and other.__module__ != cls.__module__ and (file is None or file != other_file):
        raise TaskDefinitionError(
            f"{owner} has the same namespace {key[0]!r} and name {key[1]!r} as {type_name(other)}: "
            "their tasks would share ids and outputs; set task_namespace on one of them "
            "(or call stardag.auto_namespace(__name__) at the top of its module)"
        )
    _classes[key] = (cls, file)  # a class redefined in its own module (a notebook cell, a reload) replaces it


def _field_encoders(cls: type) -> dict[str, Any]:
    """Encoders of the fields whose declared types fix tuples or sets (see ``_ids.field_encoder``)."""
    encoders = {name: field_encoder(info.annotation) for name, info in cls.__pydantic_fields__.items()}
    cls.__stardag_encoders__ = {name: e for name, e in encoders.items() if e is not None}
    return cls.__stardag_encoders__


def _unencodable_error(cls: type, exc: UnencodableValue) -> TaskDefinitionError:
    field, *rest = exc.path
    where = "".join(f"[{p!r}]" for p in rest)
    reason = exc.reason or (
        "it has no canonical encoding for the task's id (supported: None, bool, int, float, str, bytes, "
        "list, tuple, dict, set, enums, pydantic models, tasks, paths, dates and times, UUID, Decimal, "
        "IP addresses); declare the field as one of those (a URL as str, say) and convert it in run()"
    )
    return TaskDefinitionError(
        f"parameter {field!r} of task {cls.__qualname__} holds a {type_name(exc.value_type)}"
        f"{' at ' + field + where if where else ''}: {reason}"
    )


def check_unchanged(task: Task) -> None:
    """Raise if a model inside ``task``'s parameters was changed in place after its id was computed.

    Lists, dicts and sets are frozen; a model whose class is not frozen is
    copied at construction but can still be changed, so it is checked here
    (before the task runs and when its completeness is asked).
    """
    watch = task.__pydantic_private__["_watch"]
    if not watch:
        return
    for name, before in watch.items():
        if dumps(encode(task.__dict__[name])) != before:
            raise TaskDefinitionError(
                f"parameter {name!r} of task {task!r} was changed after the task's id {task.id} was computed: "
                "its output would not match its id; make a new task instead "
                "(task.model_copy(update=...)), or make the model's class frozen "
                "(model_config = ConfigDict(frozen=True))"
            )


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
        elif isinstance(item, type) and issubclass(item, Task):
            raise TypeError(f"expected a task, got the task class {item.__qualname__}: make one, "
                            f"{item.__qualname__}(...)")
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
    """Records (class, fields with tasks as refs, fields_set, task_id, watch), dependencies first.

    A task whose id is in ``known`` (already sent to the receiver) becomes the
    record ``(None, None, None, task_id, None)`` and is not walked.
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
            records.append((None, None, None, task_id, None))
            continue
        if not expanded:
            stack.append((task, True))
            stack.extend((dep, False) for dep in _param_tasks(task) if dep.id not in index)
            continue

        def ref(t: Task) -> _Ref:
            return _Ref(index[t.id])

        fields = {k: map_tasks(v, ref, Task) for k, v in task.__dict__.items()}
        index[task_id] = len(records)
        records.append((type(task), fields, task.__pydantic_fields_set__, task_id,
                        task.__pydantic_private__["_watch"]))
    return records


def _rebuild(records: list[tuple[Any, ...]], cache: dict[str, Task] | None = None) -> Task:
    """The last record's task; ``cache`` resolves known records and learns the new ones."""
    built: list[Task] = []
    for cls, fields, fields_set, task_id, watch in records:
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
                "__pydantic_private__": {"_task_id": task_id, "_output": None, "_watch": watch},
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
