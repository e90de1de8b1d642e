"""Targets: atomic writes, the in-memory store, serialisation by ``T``, and the target root."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import tasks_for_tests as tt
from conftest import subprocess_env
from stardag import AutoTask, TargetError
from stardag import target as target_module
from stardag.build import DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build, build_sequential
from stardag.target import (
    ENV_TARGET_ROOT,
    InMemoryTarget,
    JSONSerializer,
    LocalTarget,
    PickleSerializer,
    PydanticSerializer,
    Serializer,
    clear_memory_root,
    get_target_root,
    make_target,
    serializer_for,
    set_target_root,
    target_root,
)


class Exploding(Serializer):
    suffix = ".json"

    def dumps(self, value: Any) -> bytes:
        raise ValueError("cannot serialise this")


def files_under(path: str) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*") if p.is_file())


# -- atomic writes -----------------------------------------------------------


def test_a_failing_serializer_leaves_no_output(fresh_dir: str) -> None:
    target = LocalTarget(os.path.join(fresh_dir, "a", "out.json"), Exploding())
    with pytest.raises(ValueError, match="cannot serialise"):
        target.save({"x": 1})
    assert not target.exists()
    assert files_under(fresh_dir) == []


def test_a_failed_overwrite_keeps_the_previous_output_whole(fresh_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = os.path.join(fresh_dir, "out.json")
    LocalTarget(path, JSONSerializer()).save({"old": True})
    with pytest.raises(ValueError):
        LocalTarget(path, Exploding()).save({"new": True})

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk gone between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        LocalTarget(path, JSONSerializer()).save({"new": True})
    monkeypatch.undo()
    assert LocalTarget(path, JSONSerializer()).load() == {"old": True}
    assert files_under(fresh_dir) == ["out.json"]  # the temporary file was removed


def test_a_crash_mid_save_leaves_nothing_that_counts_as_complete(fresh_dir: str) -> None:
    """The process dies after writing the temporary file, before the rename."""
    script = textwrap.dedent("""
        import os, sys
        import tasks_for_tests as tt
        from stardag.target import set_target_root
        set_target_root(sys.argv[1])
        os.replace = lambda *args: os._exit(3)
        tt.Leaf(value=9).output().save(9)
    """)
    result = subprocess.run([sys.executable, "-c", script, fresh_dir], env=subprocess_env(), timeout=60)
    assert result.returncode == 3
    with target_root(fresh_dir):
        leaf = tt.Leaf(value=9)
        assert not leaf.complete()
        [stray] = files_under(fresh_dir)
        assert ".tmp-" in stray and stray.startswith(os.path.join("default", "Leaf"))
        # The next build does the work and the output is whole.
        assert build_sequential([leaf]).n_succeeded == 1
        assert leaf.load() == 9


def test_saves_from_many_threads_never_collide(fresh_dir: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = os.path.join(fresh_dir, "same.json")

    def save(i: int) -> None:
        LocalTarget(path, JSONSerializer()).save({"i": i, "pad": "x" * 10_000})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(save, range(200)))
    assert LocalTarget(path, JSONSerializer()).load()["pad"] == "x" * 10_000
    assert files_under(fresh_dir) == ["same.json"]


# -- in-memory targets -------------------------------------------------------


def test_in_memory_targets_are_per_root_and_clearable() -> None:
    a = make_target("memory://t-a", "x/y", JSONSerializer())
    b = make_target("memory://t-b", "x/y", JSONSerializer())
    assert isinstance(a, InMemoryTarget)
    try:
        assert not a.exists()
        with pytest.raises(FileNotFoundError, match="x/y"):
            a.load()
        a.save([1, 2])
        assert a.exists() and a.load() == [1, 2] and not b.exists()
        value = {"k": [1]}
        b.save(value)
        value["k"].append(2)  # stored serialised: later mutation does not leak in
        assert b.load() == {"k": [1]}
        clear_memory_root("memory://t-a")
        assert not a.exists() and b.exists()
    finally:
        clear_memory_root("memory://t-a")
        clear_memory_root("memory://t-b")


def test_tasks_build_into_an_in_memory_root(memory_root: str) -> None:
    top = tt.Sum(deps=(tt.Leaf(value=1), tt.Leaf(value=2)))
    assert build_sequential([top]).n_succeeded == 3
    assert top.load() == 3 and top.output().path.startswith(memory_root + "/")
    with target_root("memory://elsewhere"):
        assert not top.complete()  # a new NAME is a new, empty root
    assert top.complete()


def test_an_in_memory_root_with_the_process_pool_is_a_clear_error(memory_root: str) -> None:
    runner = HybridConcurrentTaskRunner(
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="process"))
    with pytest.raises(TargetError, match="in-memory") as raised:
        build([tt.Leaf()], task_runner=runner)
    assert memory_root in str(raised.value) and "thread" in str(raised.value)
    assert not tt.Leaf().complete()


# -- serialisation by T ------------------------------------------------------


class PickledThing:
    def __init__(self, n: int):
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PickledThing) and other.n == self.n


class SaveDict(AutoTask[dict]):
    def run(self) -> None: ...


class SaveList(AutoTask[list[int]]):
    def run(self) -> None: ...


class SaveInt(AutoTask[int]):
    def run(self) -> None: ...


class SaveStr(AutoTask[str]):
    def run(self) -> None: ...


class SaveModel(AutoTask[tt.Point]):
    def run(self) -> None: ...


class SaveModels(AutoTask[list[tt.Point]]):
    def run(self) -> None: ...


class SaveModelMap(AutoTask[dict[str, tt.Point]]):
    def run(self) -> None: ...


class SavePair(AutoTask[tuple[int, str]]):
    def run(self) -> None: ...


class SaveThing(AutoTask[PickledThing]):
    def run(self) -> None: ...


class SaveThings(AutoTask[list[PickledThing]]):
    def run(self) -> None: ...


class SaveSet(AutoTask[set]):
    def run(self) -> None: ...


class SaveAnything(AutoTask):
    def run(self) -> None: ...


@pytest.mark.parametrize(("cls", "value", "suffix"), [
    (SaveDict, {"a": [1, 2.5, None, True], "b": {"c": "ü"}}, ".json"),
    (SaveList, [3, 1, 2], ".json"),
    (SaveInt, 7, ".json"),
    (SaveStr, "text ✓", ".json"),
    (SaveModel, tt.Point(x=1, y=2.5, label="p"), ".json"),
    (SaveModels, [tt.Point(x=1, y=2.0), tt.Point(x=2, y=3.0)], ".json"),
    (SaveModelMap, {"a": tt.Point(x=1, y=2.0)}, ".json"),
    (SavePair, (1, "a"), ".json"),
    (SaveThing, PickledThing(4), ".pkl"),
    (SaveThings, [PickledThing(1)], ".pkl"),
    (SaveSet, {1, 2, 3}, ".pkl"),
    (SaveAnything, PickledThing(5), ".pkl"),
])
def test_outputs_serialise_by_their_type(cls: type, value: Any, suffix: str, root: str) -> None:
    task = cls()
    task.output().save(value)
    path = task.output().path
    assert path.endswith(task.task_id + suffix)
    loaded = task.load()
    assert loaded == value and type(loaded) is type(value)
    raw = Path(path).read_bytes()
    if suffix == ".json":
        stored = json.loads(raw)
        if isinstance(value, tt.Point):
            assert stored == value.model_dump()
    else:
        assert pickle.loads(raw) == value


def test_serializer_choice() -> None:
    assert isinstance(serializer_for(dict), JSONSerializer)
    assert isinstance(serializer_for(int), JSONSerializer)
    assert isinstance(serializer_for(tt.Point), PydanticSerializer)
    assert isinstance(serializer_for(PickledThing), PickleSerializer)


def test_pydantic_outputs_are_validated_on_load(root: str) -> None:
    task = SaveModel()
    Path(task.output().path).parent.mkdir(parents=True)
    Path(task.output().path).write_text('{"x": "not an int", "y": 1}')
    with pytest.raises(Exception, match="x"):
        task.load()


# -- the target root ---------------------------------------------------------


@pytest.fixture
def no_root_in_code(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(target_module, "_root", None)
    monkeypatch.delenv(ENV_TARGET_ROOT, raising=False)


def test_root_from_the_environment(no_root_in_code: None, fresh_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_TARGET_ROOT, fresh_dir)
    assert get_target_root() == fresh_dir
    leaf = tt.Leaf(value=2)
    assert leaf.output().path.startswith(fresh_dir + os.sep)
    assert build_sequential([leaf]).n_succeeded == 1
    assert files_under(fresh_dir) == [os.path.relpath(leaf.output().path, fresh_dir), tt.RUNS_LOG]


def test_root_from_code_wins_over_the_environment(no_root_in_code: None, fresh_dir: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_TARGET_ROOT, "/nonexistent/env-root")
    inner = os.path.join(fresh_dir, "inner")
    set_target_root(fresh_dir)
    assert get_target_root() == fresh_dir
    with target_root(inner) as active:
        assert active == inner == get_target_root()
        with target_root("memory://nested"):
            assert get_target_root() == "memory://nested"
        assert get_target_root() == inner
    assert get_target_root() == fresh_dir
    set_target_root(None)
    assert get_target_root() == "/nonexistent/env-root"


def test_root_default_relative_and_home_paths(no_root_in_code: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_target_root() == os.path.expanduser(os.path.join("~", ".stardag", "targets"))
    with target_root("relative/dir"):
        assert get_target_root() == os.path.abspath("relative/dir")
    with target_root(Path("~") / "x"):
        assert get_target_root() == os.path.join(os.path.expanduser("~"), "x")
    with pytest.raises(TargetError, match="empty"):
        set_target_root("")


def test_an_output_follows_the_root_in_force(fresh_dir: str, root: str) -> None:
    leaf = tt.Leaf(value=1)
    first = leaf.output().path
    with target_root(fresh_dir + "-other"):
        assert leaf.output().path != first
        assert leaf.output().path.startswith(fresh_dir + "-other")
    assert leaf.output().path == first


@pytest.mark.parametrize("start_method", ["fork", "forkserver", "spawn"])
def test_process_workers_use_the_root_set_in_code(start_method: str, root: str) -> None:
    task = tt.WhereAmI(tag=start_method)
    runner = HybridConcurrentTaskRunner(
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="process"),
        max_process_workers=1, process_start_method=start_method)
    summary = build([task], task_runner=runner)
    assert summary.n_succeeded == 1, summary.failures
    seen = task.load()
    assert seen["root"] == root and seen["pid"] != os.getpid()
    assert task.output().path.startswith(root + os.sep)
    # A later build in the same process under another root sends the new root along.
    with target_root(os.path.join(root, "second")):
        assert build([task], task_runner=runner).n_succeeded == 1
        assert task.load()["root"] == os.path.join(root, "second")


def test_process_workers_use_the_root_from_the_environment(no_root_in_code: None, fresh_dir: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_TARGET_ROOT, fresh_dir)
    task = tt.WhereAmI(tag="env")
    runner = HybridConcurrentTaskRunner(
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="process"),
        max_process_workers=1, process_start_method="forkserver")
    assert build([task], task_runner=runner).n_succeeded == 1
    assert task.load()["root"] == fresh_dir
