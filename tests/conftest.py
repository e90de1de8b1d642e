"""Fixtures for the stardag tests: fresh target roots, and environments for subprocesses.

Roots live on /dev/shm when it exists (file writes in /tmp are slow on the CI
machines). pytest's default ``prepend`` import mode puts this directory on
``sys.path``, so ``tasks_for_tests`` is importable here, in worker processes
and in subprocesses given ``TESTS_DIR`` on ``PYTHONPATH``. ``tests/build`` needs
the collection hook at the bottom: pytest skips directories named ``build``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from stardag.target import ENV_TARGET_ROOT, clear_memory_root, target_root

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
_FAST_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def subprocess_env(**extra: str) -> dict[str, str]:
    """An environment for a Python subprocess that can import stardag and the test tasks."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_DIR), str(TESTS_DIR), env.get("PYTHONPATH", "")])
    env.pop(ENV_TARGET_ROOT, None)
    env.update(extra)
    return env


@pytest.fixture
def fresh_dir() -> Iterator[str]:
    """An empty directory, on /dev/shm when possible, removed afterwards."""
    path = tempfile.mkdtemp(prefix="stardag-test-", dir=_FAST_DIR)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def root(fresh_dir: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh directory set as the target root in code (and nowhere else)."""
    monkeypatch.delenv(ENV_TARGET_ROOT, raising=False)
    with target_root(fresh_dir):
        yield fresh_dir


@pytest.fixture
def memory_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh in-memory target root set in code."""
    monkeypatch.delenv(ENV_TARGET_ROOT, raising=False)
    name = f"memory://{uuid.uuid4().hex}"
    try:
        with target_root(name):
            yield name
    finally:
        clear_memory_root(name)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect ``tests/build``: pytest's default ``norecursedirs`` skips any dir named ``build``."""
    if collection_path == TESTS_DIR / "build":
        return False
    return None
