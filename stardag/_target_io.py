"""File handles of ``target.open`` / ``open_aio``: atomic writers, in-memory files, the async face.

The async face runs each blocking call in the event loop's default executor
(a thread), which is all ``aiofiles`` does too: no dependency needed for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from typing import Any, Callable

__all__ = ["AsyncFile", "AtomicWriter", "MemoryWriter", "check_mode", "memory_reader"]

MODES = ("r", "rb", "w", "wb")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} for a target; use 'r', 'rb', 'w' or 'wb'")


def _text_options(mode: str) -> dict[str, str]:
    return {} if mode.endswith("b") else {"encoding": "utf-8"}


class AtomicWriter:
    """A temporary file that replaces the output when closed cleanly.

    ``with`` exits cleanly, or ``close()``: the output appears, whole. An
    exception inside the ``with``, ``discard()``, or a handle dropped unclosed:
    the temporary file is deleted and the output is left as it was.
    """

    def __init__(self, fd: int, tmp: str, path: str, mode: str, commit: Callable[[str, str], None]):
        self._tmp = tmp
        self.closed = True
        try:
            self._file = os.fdopen(fd, mode, **_text_options(mode))
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        self.path = path
        self.mode = mode
        self._commit = commit
        self.closed = False

    def write(self, data: Any) -> int:
        return self._file.write(data)

    def writelines(self, lines: Any) -> None:
        self._file.writelines(lines)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Finish the write: the output appears."""
        if self.closed:
            return
        self.closed = True
        try:
            self._file.close()
            self._commit(self._tmp, self.path)
        except BaseException:
            self._remove_tmp()
            raise

    def discard(self) -> None:
        """Abandon the write: nothing appears, the temporary file is deleted."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._file.close()
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            self.discard()

    def __repr__(self) -> str:
        return f"<atomic writer of {self.path!r}, mode {self.mode!r}>"


class MemoryWriter:
    """An in-memory file whose bytes are stored when it is closed cleanly."""

    def __init__(self, mode: str, store: Callable[[bytes], None]):
        self.mode = mode
        self._buffer: Any = io.BytesIO() if mode == "wb" else io.StringIO()
        self._store = store
        self.closed = False

    def write(self, data: Any) -> int:
        return self._buffer.write(data)

    def writelines(self, lines: Any) -> None:
        self._buffer.writelines(lines)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        value = self._buffer.getvalue()
        self._store(value if isinstance(value, bytes) else value.encode("utf-8"))

    def discard(self) -> None:
        self.closed = True

    def __enter__(self) -> MemoryWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def memory_reader(data: bytes, mode: str) -> Any:
    """A read-only file over ``data``, text (UTF-8) or binary like a file opened with ``mode``."""
    binary = io.BytesIO(data)
    return binary if mode == "rb" else io.TextIOWrapper(binary, encoding="utf-8")


class AsyncFile:
    """``async with target.open_aio(mode) as f``: ``await f.read()`` / ``await f.write(data)``.

    With ``in_thread``, opening, each read and write, and the final rename run in
    the event loop's default executor. On an exception (a cancellation too) the
    write is abandoned at once, on the loop's thread: nothing is left behind.
    """

    def __init__(self, opener: Callable[[], Any], in_thread: bool = True):
        self._opener = opener
        self._in_thread = in_thread
        self._file: Any = None

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if not self._in_thread:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def _opened(self) -> Any:
        if self._file is None:
            raise TypeError("use 'async with target.open_aio(mode) as f', then 'await f.read()' "
                            "or 'await f.write(data)'")
        return self._file

    async def __aenter__(self) -> AsyncFile:
        self._file = await self._call(self._opener)
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        file, self._file = self._file, None
        if exc_type is None:
            await self._call(file.__exit__, None, None, None)
        else:
            file.__exit__(exc_type, exc, tb)

    async def read(self, size: int = -1) -> Any:
        return await self._call(self._opened().read, size)

    async def write(self, data: Any) -> int:
        return await self._call(self._opened().write, data)

    def __enter__(self) -> None:
        raise TypeError("use 'async with target.open_aio(...)', not 'with target.open_aio(...)'")

    def __exit__(self, *args: Any) -> None:  # pragma: no cover - __enter__ always raises
        pass
