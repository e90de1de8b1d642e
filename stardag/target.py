"""Targets: where a task's output lives, and how values become bytes.

The target root is a directory, or ``memory://NAME`` for an in-memory store
(one per NAME and per process; a new NAME is a new, empty root). It comes from
``set_target_root`` / ``target_root`` in code, else the ``STARDAG_TARGET_ROOT``
environment variable, else ``~/.stardag/targets``.

File writes are atomic: bytes go to a temporary file beside the output, which
is then renamed over it. A crash leaves at most a stray ``*.tmp-*`` file, never a
partial output that counts as complete.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pickle
from typing import Any, Iterator

from pydantic import BaseModel, PydanticSchemaGenerationError, TypeAdapter

from .errors import TargetError

__all__ = [
    "ENV_TARGET_ROOT",
    "InMemoryTarget",
    "JSONSerializer",
    "LocalTarget",
    "PickleSerializer",
    "PydanticSerializer",
    "Serializer",
    "clear_memory_root",
    "get_target_root",
    "is_memory_root",
    "make_target",
    "serializer_for",
    "set_target_root",
    "target_root",
]

ENV_TARGET_ROOT = "STARDAG_TARGET_ROOT"
MEMORY_SCHEME = "memory://"
_DEFAULT_ROOT = os.path.join("~", ".stardag", "targets")

_root: str | None = None
_memory_stores: dict[str, dict[str, bytes]] = {}


def set_target_root(root: str | os.PathLike[str] | None) -> None:
    """Set the target root for this process (``None`` goes back to the default)."""
    global _root
    _root = None if root is None else _normalise_root(root)


def get_target_root() -> str:
    """The target root in force: set in code, else the environment, else the default."""
    if _root is not None:
        return _root
    env = os.environ.get(ENV_TARGET_ROOT)
    return _normalise_root(env if env else _DEFAULT_ROOT)


@contextlib.contextmanager
def target_root(root: str | os.PathLike[str]) -> Iterator[str]:
    """Use ``root`` inside the ``with`` block, then restore the previous setting."""
    global _root
    previous = _root
    set_target_root(root)
    try:
        yield get_target_root()
    finally:
        _root = previous


def is_memory_root(root: str) -> bool:
    return root.startswith(MEMORY_SCHEME)


def clear_memory_root(root: str) -> None:
    """Forget everything stored under the in-memory root ``root``."""
    _memory_stores.pop(root, None)


def _normalise_root(root: str | os.PathLike[str]) -> str:
    text = os.fspath(root)
    if not isinstance(text, str) or not text:
        raise TargetError(f"target root {root!r} is empty; give a directory or 'memory://NAME'")
    if is_memory_root(text):
        return text
    return os.path.abspath(os.path.expanduser(text))


class Serializer:
    """Turns values into bytes and back; ``suffix`` names the file extension."""

    suffix = ""

    def dumps(self, value: Any) -> bytes:
        raise NotImplementedError

    def loads(self, data: bytes) -> Any:
        raise NotImplementedError


class JSONSerializer(Serializer):
    suffix = ".json"
    _encode = json.JSONEncoder(separators=(",", ":")).encode

    def dumps(self, value: Any) -> bytes:
        return self._encode(value).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class PydanticSerializer(Serializer):
    suffix = ".json"

    def __init__(self, type_: Any):
        self.adapter = TypeAdapter(type_)

    def dumps(self, value: Any) -> bytes:
        return self.adapter.dump_json(value)

    def loads(self, data: bytes) -> Any:
        return self.adapter.validate_json(data)


class PickleSerializer(Serializer):
    suffix = ".pkl"

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


_JSON_TYPES = (dict, list, tuple, str, int, float, bool, type(None))
_JSON = JSONSerializer()
_PICKLE = PickleSerializer()


def serializer_for(type_: Any) -> Serializer:
    """JSON for JSON types, pydantic JSON for models, pickle for anything else."""
    origin = getattr(type_, "__origin__", None) or type_
    if origin is type_ and origin in _JSON_TYPES or type_ is None:
        return _JSON
    if origin in _JSON_TYPES:
        # A parametrised container (list[Model], tuple[int, str], ...): plain json
        # cannot write models nor give back tuples; pydantic does both.
        try:
            return PydanticSerializer(type_)
        except PydanticSchemaGenerationError:  # holds a type pydantic does not know
            return _PICKLE
    if isinstance(origin, type) and issubclass(origin, BaseModel):
        return PydanticSerializer(type_)
    return _PICKLE


class LocalTarget:
    """A file under the target root, written atomically."""

    __slots__ = ("path", "serializer")
    _counter = itertools.count()

    def __init__(self, path: str, serializer: Serializer = _PICKLE):
        self.path = path
        self.serializer = serializer

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def save(self, value: Any) -> None:
        data = self.serializer.dumps(value)
        tmp = f"{self.path}.tmp-{os.getpid()}-{next(self._counter)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def load(self) -> Any:
        with open(self.path, "rb") as f:
            return self.serializer.loads(f.read())

    def __repr__(self) -> str:
        return f"LocalTarget({self.path!r})"


class InMemoryTarget:
    """A value kept in this process's memory, serialised like a file would be."""

    __slots__ = ("root", "path", "serializer")

    def __init__(self, root: str, key: str, serializer: Serializer = _PICKLE):
        self.root = root
        self.path = f"{root}/{key}"
        self.serializer = serializer

    def exists(self) -> bool:
        store = _memory_stores.get(self.root)
        return store is not None and self.path in store

    def save(self, value: Any) -> None:
        data = self.serializer.dumps(value)
        _memory_stores.setdefault(self.root, {})[self.path] = data

    def load(self) -> Any:
        try:
            data = _memory_stores[self.root][self.path]
        except KeyError:
            raise FileNotFoundError(f"no output stored at {self.path!r}") from None
        return self.serializer.loads(data)

    def __repr__(self) -> str:
        return f"InMemoryTarget({self.path!r})"


def make_target(root: str, relpath: str, serializer: Serializer) -> LocalTarget | InMemoryTarget:
    """The target for ``relpath`` (``/``-separated) under ``root``."""
    if is_memory_root(root):
        return InMemoryTarget(root, relpath + serializer.suffix, serializer)
    return LocalTarget(os.path.join(root, relpath + serializer.suffix), serializer)
