"""Targets: where a task's output lives, and how values become bytes.

The target root is a directory, or ``memory://NAME`` for an in-memory store
(one per NAME and per process; a new NAME is a new, empty root). The default
root comes from ``set_target_root`` / ``target_root`` in code, else the
``STARDAG_TARGET_ROOT`` environment variable, else the ``"default"`` entry of
``STARDAG_TARGET_ROOTS`` (a JSON object of named roots), else
``~/.stardag/targets``. A relative root is made absolute once, when first
read: a task that changes the working directory does not move the outputs.

Writes are atomic, through ``save`` or ``open("w")``: bytes go to a temporary
file in the root's ``.stardag-tmp`` directory, which is then renamed over the
output. A process killed mid-write leaves at most a stray temporary file,
never a partial output that counts as complete; the next build removes
temporary files whose writer is gone (:func:`remove_stale_temporary_files`).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import pickle
import shutil
import socket
import time
import weakref
from typing import Any, Iterator

from pydantic import BaseModel, PydanticSchemaGenerationError, TypeAdapter

from ._target_io import AsyncFile, AtomicWriter, MemoryWriter, check_mode, memory_reader
from .errors import TargetError, TaskOutputMissingError

__all__ = [
    "DEFAULT_ROOT_NAME",
    "ENV_TARGET_ROOT",
    "ENV_TARGET_ROOTS",
    "InMemoryTarget",
    "JSONSerializer",
    "LocalTarget",
    "PickleSerializer",
    "PydanticSerializer",
    "Serializer",
    "TMP_DIR",
    "clear_memory_root",
    "get_target_root",
    "is_memory_root",
    "make_target",
    "remove_stale_temporary_files",
    "serializer_for",
    "set_target_root",
    "target_root",
    "temporary_path",
]

ENV_TARGET_ROOT = "STARDAG_TARGET_ROOT"
ENV_TARGET_ROOTS = "STARDAG_TARGET_ROOTS"
DEFAULT_ROOT_NAME = "default"
MEMORY_SCHEME = "memory://"
TMP_DIR = ".stardag-tmp"
_DEFAULT_ROOT = os.path.join("~", ".stardag", "targets")
# Another host's temporary file is taken for abandoned once it is this old:
# its writer's pid cannot be checked from here.
_FOREIGN_TMP_AGE_S = 24 * 3600

_root: str | None = None
# (STARDAG_TARGET_ROOT, STARDAG_TARGET_ROOTS) as last read, and the roots they gave:
# one tuple, so that a thread never sees the values of one with the roots of another.
_env: tuple[tuple[str | None, str | None] | None, dict[str, str]] = (None, {})
_memory_stores: dict[str, dict[str, bytes]] = {}


# -- the target root -----------------------------------------------------------


def set_target_root(root: str | os.PathLike[str] | None) -> None:
    """Set the default target root for this process (``None`` goes back to the environment)."""
    global _root
    _root = None if root is None else _normalise_root(root, "target root")


def get_target_root(name: str = DEFAULT_ROOT_NAME) -> str:
    """The target root in force (``name``: one of ``STARDAG_TARGET_ROOTS``'s named roots).

    The default root is the one set in code, else ``STARDAG_TARGET_ROOT``, else
    ``STARDAG_TARGET_ROOTS["default"]``, else ``~/.stardag/targets``.

    Raises:
        TargetError: ``STARDAG_TARGET_ROOTS`` is not a JSON object of roots, or has no ``name``.
    """
    if _root is not None and name == "default":  # the hot path: every output() asks
        return _root
    environ = os.environ
    seen = (environ.get(ENV_TARGET_ROOT), environ.get(ENV_TARGET_ROOTS))
    roots = _env[1] if seen == _env[0] else _read_environment(seen)
    try:
        return roots[name]
    except KeyError:
        known = ", ".join(map(repr, sorted(roots)))
        raise TargetError(
            f"no target root named {name!r}; {ENV_TARGET_ROOTS} names {known}: add "
            f"{name!r} to it, e.g. {ENV_TARGET_ROOTS}='{{\"{name}\": \"/path\"}}'"
        ) from None


def _read_environment(seen: tuple[str | None, str | None]) -> dict[str, str]:
    """Parse and resolve the environment's roots once per value (relative paths resolve now)."""
    global _env
    single, named = seen
    roots: dict[str, str] = {}
    if named:
        try:
            parsed = json.loads(named)
        except json.JSONDecodeError as exc:
            raise TargetError(
                f"{ENV_TARGET_ROOTS} is not valid JSON ({exc}): {named!r}; set it to a JSON object "
                f"of named roots, e.g. {ENV_TARGET_ROOTS}='{{\"default\": \"/data/stardag\"}}'"
            ) from None
        if not isinstance(parsed, dict):
            raise TargetError(
                f"{ENV_TARGET_ROOTS} must be a JSON object of named roots, like "
                f"'{{\"default\": \"/data/stardag\"}}', not {type(parsed).__name__}: {named!r}"
            )
        for key, value in parsed.items():
            if not isinstance(value, str):
                raise TargetError(
                    f"{ENV_TARGET_ROOTS}[{key!r}] must be a path string, not "
                    f"{type(value).__name__}: {value!r}"
                )
            roots[key] = _normalise_root(value, f"{ENV_TARGET_ROOTS}[{key!r}]")
    if single:
        roots[DEFAULT_ROOT_NAME] = _normalise_root(single, ENV_TARGET_ROOT)
    roots.setdefault(DEFAULT_ROOT_NAME, _normalise_root(_DEFAULT_ROOT, "target root"))
    _env = (seen, roots)
    return roots


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


def _normalise_root(root: str | os.PathLike[str], what: str) -> str:
    text = os.fspath(root)
    if not isinstance(text, str) or not text:
        raise TargetError(f"{what} {root!r} is empty; give a directory or 'memory://NAME'")
    if is_memory_root(text):
        return text
    return os.path.abspath(os.path.expanduser(text))


# -- serializers ---------------------------------------------------------------


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


# -- targets -------------------------------------------------------------------


class _Target:
    """What file and in-memory targets share: the task they belong to, and load errors."""

    __slots__ = ()
    path: str
    _owner: Any

    @property
    def owner(self) -> Any:
        """The task whose output this is (``None`` if unknown or gone)."""
        return self._owner() if self._owner is not None else None

    def _who(self) -> str:
        owner = self.owner
        return f"task {owner!r}" if owner is not None else "the task that writes it"

    def _missing(self) -> TaskOutputMissingError:
        owner = self.owner
        fix = "build it first: build([task])" if owner is None else f"build it first: build([{owner!r}])"
        return TaskOutputMissingError(f"{self._who()} has no output at {self.path!r}; {fix}")

    def _unwritable(self, value: Any, exc: Exception) -> TargetError:
        fmt = type(self.serializer).__name__.replace("Serializer", "").lower() or "its format"
        error = TargetError(
            f"cannot save a {type(value).__module__}.{type(value).__qualname__} as {fmt} to "
            f"{self.path!r}, the output of {self._who()}: {type(exc).__name__}: {exc}. Save a value "
            "its serializer can write (declare the output type: AutoTask[T])"
        )
        error.__cause__ = exc
        return error

    def _unreadable(self, exc: Exception) -> TargetError:
        error = TargetError(
            f"cannot load {self.path!r}, the output of {self._who()}: {type(exc).__name__}: {exc}. "
            "The file is corrupt, or was written by another version of the task; rebuild it "
            "with build([task], rebuild=[task]), or delete it with task.output().remove()"
        )
        error.__cause__ = exc
        return error


class LocalTarget(_Target):
    """A file, written atomically through a temporary file.

    ``tmp_dir`` holds the temporary files (default: the output's directory);
    ``owner`` is the task the output belongs to (named in errors).
    """

    __slots__ = ("path", "serializer", "tmp_dir", "_owner")

    def __init__(self, path: str, serializer: Serializer = _PICKLE, owner: Any = None,
                 tmp_dir: str | None = None):
        self.path = path
        self.serializer = serializer
        self.tmp_dir = tmp_dir
        # Weak: the task caches its target, and a cycle would outlive the graph.
        self._owner = None if owner is None else weakref.ref(owner)

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def save(self, value: Any) -> None:
        """Serialise ``value`` and write it atomically."""
        try:
            data = self.serializer.dumps(value)
        except Exception as exc:
            raise self._unwritable(value, exc) from exc
        fd, tmp = _create_temporary(self.path, self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            _commit(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def load(self) -> Any:
        """The saved value.

        Raises:
            TaskOutputMissingError: there is no output yet.
            TargetError: the file cannot be read back (corrupt, or another version's format).
        """
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise self._missing() from None
        try:
            return self.serializer.loads(data)
        except Exception as exc:
            raise self._unreadable(exc) from exc

    def remove(self) -> None:
        """Delete the output (nothing happens when there is none); the task is then incomplete."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def open(self, mode: str = "r") -> Any:
        """The output as a file: ``"r"``/``"rb"`` to read, ``"w"``/``"wb"`` to write atomically.

        A write becomes visible only when its ``with`` block exits cleanly (or on
        ``close()``); an exception inside the block leaves neither the output nor
        a temporary file. Text is UTF-8.
        """
        check_mode(mode)
        if mode[0] == "r":
            try:
                return open(self.path, mode, **({} if mode == "rb" else {"encoding": "utf-8"}))
            except FileNotFoundError:
                raise self._missing() from None
        fd, tmp = _create_temporary(self.path, self.tmp_dir)
        return AtomicWriter(fd, tmp, self.path, mode, _commit)

    def open_aio(self, mode: str = "r") -> AsyncFile:
        """:meth:`open` for ``async with``: each call runs in the event loop's default executor."""
        check_mode(mode)
        return AsyncFile(lambda: self.open(mode))

    def __repr__(self) -> str:
        return f"LocalTarget({self.path!r})"


class InMemoryTarget(_Target):
    """A value kept in this process's memory, serialised like a file would be."""

    __slots__ = ("root", "path", "serializer", "_owner")

    def __init__(self, root: str, key: str, serializer: Serializer = _PICKLE, owner: Any = None):
        self.root = root
        self.path = f"{root}/{key}"
        self.serializer = serializer
        self._owner = None if owner is None else weakref.ref(owner)

    def exists(self) -> bool:
        store = _memory_stores.get(self.root)
        return store is not None and self.path in store

    def save(self, value: Any) -> None:
        try:
            data = self.serializer.dumps(value)
        except Exception as exc:
            raise self._unwritable(value, exc) from exc
        _memory_stores.setdefault(self.root, {})[self.path] = data

    def _store(self, data: bytes) -> None:
        _memory_stores.setdefault(self.root, {})[self.path] = data

    def _data(self) -> bytes:
        try:
            return _memory_stores[self.root][self.path]
        except KeyError:
            raise self._missing() from None

    def load(self) -> Any:
        data = self._data()
        try:
            return self.serializer.loads(data)
        except Exception as exc:
            raise self._unreadable(exc) from exc

    def remove(self) -> None:
        store = _memory_stores.get(self.root)
        if store is not None:
            store.pop(self.path, None)

    def open(self, mode: str = "r") -> Any:
        """Like :meth:`LocalTarget.open`: the bytes are stored when the ``with`` block exits cleanly."""
        check_mode(mode)
        if mode[0] == "r":
            return memory_reader(self._data(), mode)
        return MemoryWriter(mode, self._store)

    def open_aio(self, mode: str = "r") -> AsyncFile:
        check_mode(mode)
        return AsyncFile(lambda: self.open(mode), in_thread=False)

    def __repr__(self) -> str:
        return f"InMemoryTarget({self.path!r})"


def make_target(root: str, relpath: str, serializer: Serializer,
                owner: Any = None) -> LocalTarget | InMemoryTarget:
    """The target for ``relpath`` (``/``-separated) under ``root``, belonging to the task ``owner``."""
    if is_memory_root(root):
        return InMemoryTarget(root, relpath + serializer.suffix, serializer, owner)
    return LocalTarget(os.path.join(root, relpath + serializer.suffix), serializer, owner,
                       f"{root}{os.sep}{TMP_DIR}")


# -- temporary files -------------------------------------------------------------

_counter = itertools.count()
_HOST = "".join(c if c.isalnum() or c in ".-" else "_" for c in socket.gethostname()) or "host"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL


def temporary_path(directory: str, name: str) -> str:
    """A new path in ``directory`` named as this process's temporary files are.

    A build removes such a file once its writer is gone (:func:`remove_stale_temporary_files`).
    """
    return f"{directory}{os.sep}{name}.tmp-{os.getpid()}-{next(_counter)}@{_HOST}"


def _create_temporary(path: str, tmp_dir: str | None) -> tuple[int, str]:
    """A new temporary file for ``path``: ``(fd, name)``, named ``<file>.tmp-<pid>-<n>@<host>``.

    String operations, not os.path's functions: this runs once per write.
    """
    suffix = f".tmp-{os.getpid()}-{next(_counter)}@{_HOST}"
    tmp = f"{tmp_dir}{os.sep}{path.rpartition(os.sep)[2]}{suffix}" if tmp_dir else path + suffix
    try:
        fd = os.open(tmp, _CREATE, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        fd = os.open(tmp, _CREATE, 0o644)
    return fd, tmp


def _commit(tmp: str, path: str) -> None:
    """Rename the finished temporary file ``tmp`` over ``path``."""
    try:
        os.replace(tmp, path)
    except FileNotFoundError:
        if os.path.exists(tmp):  # the output's directory is not there yet
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.replace(tmp, path)
        else:
            raise
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # The output's directory is on another filesystem than the root's
        # temporary directory: copy beside the output, then rename there.
        beside = f"{path}.tmp-{os.getpid()}-{next(_counter)}@{_HOST}"
        try:
            shutil.copyfile(tmp, beside)
            os.replace(beside, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(beside)
            raise
        os.unlink(tmp)


def _writer_gone(name: str, now: float, mtime: float) -> bool:
    """Whether the process that wrote the temporary file ``name`` is gone."""
    rest, _, host = name.rpartition("@")
    pid_text = rest.rpartition(".tmp-")[2].partition("-")[0]
    if not pid_text.isdigit():
        return False  # not one of ours
    if host != _HOST or os.name == "nt":  # a pid we cannot probe (os.kill(pid, 0) kills on Windows)
        return now - mtime > _FOREIGN_TMP_AGE_S
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by another user
        return False
    return False


def remove_stale_temporary_files(root: str) -> list[str]:
    """Delete the temporary files under ``root`` whose writer is gone; return their paths.

    A writer is gone when it ran on this host and its pid no longer exists, or,
    for another host (a shared root), when the file is over a day old. A
    build calls this when it starts, and again after it is interrupted.
    """
    if is_memory_root(root):
        return []
    directory = os.path.join(root, TMP_DIR)
    try:
        entries = list(os.scandir(directory))
    except OSError:  # none yet (or unreadable: nothing this build can do about it)
        return []
    now = time.time()
    removed = []
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if _writer_gone(entry.name, now, entry.stat(follow_symlinks=False).st_mtime):
                os.unlink(entry.path)
                removed.append(entry.path)
        except OSError:  # its writer finished, another build removed it, or it is not ours to remove
            continue
    return removed
