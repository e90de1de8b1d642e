"""Fixtures for the stardag tests: fresh target roots, and environments for subprocesses.

Roots live on /dev/shm when it exists (file writes in /tmp are slow on the CI
machines). pytest's default ``prepend`` import mode puts this directory on
``sys.path``, so ``tasks_for_tests`` is importable here, in worker processes
and in subprocesses given ``TESTS_DIR`` on ``PYTHONPATH``. ``tests/build`` needs
the collection hook at the bottom: pytest skips directories named ``build``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

from stardag.target import ENV_TARGET_ROOT, clear_memory_root, target_root

if TYPE_CHECKING:
    import psutil

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
_FAST_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
DASK_WORKERS = 2


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


_CLUSTER_SCRIPT = """
import json, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the tests close it
sys.path[:0] = json.loads(sys.argv[1])  # the workers (spawned) import the test tasks
from stardag.build._dask import local_cluster
cluster = local_cluster(int(sys.argv[2]))  # as a build without an address starts it
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # until the tests close the pipe, or die
cluster.close()
"""


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[str]:
    """The address of a LocalCluster of ``DASK_WORKERS`` worker processes, one per module.

    It lives in a child process: a Dask scheduler hosted here would leave a thread
    behind (Dask's offload pool), and later process pools would give up fork. It
    closes with the module, as later tests count this process's children.
    """
    proc = subprocess.Popen([sys.executable, "-c", _CLUSTER_SCRIPT, json.dumps(sys.path), str(DASK_WORKERS)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        scheduler = proc.stdout.readline().strip()
        assert scheduler.startswith("tcp://"), "the LocalCluster did not start"
        yield scheduler
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the signal harness (tests/stopping_harness.py) ------------------------------


@pytest.fixture
def scripted(fresh_dir: str) -> Iterator[Callable[..., Any]]:
    """Start builds that tests stop with real signals (``stopping_harness.ScriptedBuild``).

    Each runs in ``fresh_dir``, in a session of its own, killed with its process
    group at the end of the test if it still runs.
    """
    from stopping_harness import ScriptedBuild

    builds: list[ScriptedBuild] = []

    def start(*args: Any, **kwargs: Any) -> ScriptedBuild:
        builds.append(ScriptedBuild(fresh_dir, *args, **kwargs))
        return builds[-1]

    yield start
    for build in builds:
        build.close()


def alive(process: psutil.Process) -> bool:
    """Whether ``process`` still runs (a zombie does not)."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="session")
def asv_site(tmp_path_factory: pytest.TempPathFactory):
    """This suite run by asv over a 3-commit clone and published, once per session (asv_history.py)."""
    import asv_history

    return asv_history.build(tmp_path_factory.mktemp("asv-history"))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect ``tests/build``: pytest's default ``norecursedirs`` skips any dir named ``build``."""
    if collection_path == TESTS_DIR / "build":
        return False
    return None
