"""Targets: atomic writes, the in-memory store, serialisation by ``T``, and the target root."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import tasks_for_tests as tt
from conftest import subprocess_env
from stardag import AutoTask, TargetError, TaskOutputMissingError
from stardag import target as target_module
from stardag.build import DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build, build_sequential
from stardag.target import (
    ENV_TARGET_ROOT,
    ENV_TARGET_ROOTS,
    TMP_DIR,
    InMemoryTarget,
    JSONSerializer,
    LocalTarget,
    PickleSerializer,
    PydanticSerializer,
    Serializer,
    clear_memory_root,
    get_target_root,
    make_target,
    remove_stale_temporary_files,
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
        assert stray.startswith(os.path.join(TMP_DIR, f"{leaf.id}.json.tmp-"))
        # The next build removes the dead writer's file, does the work, and the output is whole.
        assert build_sequential([leaf]).n_succeeded == 1
        assert leaf.load() == 9
        assert files_under(fresh_dir) == [os.path.relpath(leaf.output().path, fresh_dir), tt.RUNS_LOG]


def _stray(root: str, name: str, pid: int, host: str | None = None, age_s: float = 0) -> Path:
    path = Path(root, TMP_DIR, f"{name}.tmp-{pid}-0@{host or target_module._HOST}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("partial")
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))
    return path


def test_only_temporary_files_of_writers_that_are_gone_are_removed(fresh_dir: str) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gone = [_stray(fresh_dir, "a.json", dead.pid),
                _stray(fresh_dir, "b.json", 12345, host="another-host", age_s=2 * 24 * 3600)]
        kept = [_stray(fresh_dir, "c.json", alive.pid),  # still writing
                _stray(fresh_dir, "d.json", os.getpid()),  # this process: maybe another build's
                _stray(fresh_dir, "e.json", 12345, host="another-host", age_s=60),  # can't tell: young
                Path(fresh_dir, TMP_DIR, "notes.txt")]
        kept[-1].write_text("not a temporary file of ours")
        assert sorted(remove_stale_temporary_files(fresh_dir)) == sorted(map(str, gone))
        assert sorted(Path(fresh_dir, TMP_DIR).iterdir()) == sorted(kept)
        assert remove_stale_temporary_files("memory://anything") == []
        assert remove_stale_temporary_files(os.path.join(fresh_dir, "no-such-root")) == []
    finally:
        alive.kill()
        alive.wait()


def test_a_build_removes_stale_temporary_files_when_it_starts(fresh_dir: str) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stray = _stray(fresh_dir, "x.json", dead.pid)
    with target_root(fresh_dir):
        assert build_sequential([tt.Leaf(value=1)]).n_succeeded == 1
    assert not stray.exists()


_SLOW_WRITER = textwrap.dedent("""
    import sys, time
    import tasks_for_tests as tt
    from stardag.build import DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build
    from stardag.target import set_target_root
    set_target_root(sys.argv[2])
    mode = sys.argv[1]
    task = tt.SlowWriter()
    if mode == "sequential":
        from stardag.build import build_sequential
        build_sequential([task])
    else:
        build([task], task_runner=HybridConcurrentTaskRunner(
            execution_mode_selector=DefaultExecutionModeSelector(sync_run_default=mode)))
""")


@pytest.mark.parametrize(("mode", "sig", "at_once"), [("sequential", signal.SIGTERM, False),
                                                       ("thread", signal.SIGINT, False),
                                                       ("process", signal.SIGINT, True)])
def test_a_write_stopped_by_a_signal_leaves_no_temporary_file_for_ever(mode: str, sig: int, at_once: bool,
                                                                       fresh_dir: str) -> None:
    """The writer is stopped mid-write. A process-pool build removes the files of the
    workers it stopped before it raises; otherwise (the writer was this process, or a
    thread of it) the next build removes them."""
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, mode, fresh_dir], env=subprocess_env(),
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    tmp_dir = Path(fresh_dir, TMP_DIR)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_dir.is_dir() and list(tmp_dir.iterdir())):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(sig)
        if mode != "sequential":  # the build handles it: once lets the task finish, twice stops it
            seen = ""
            while "stopping the build" not in seen and (line := proc.stderr.readline()):
                seen += line
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0 and (sig == signal.SIGTERM or "BuildInterrupted" in err), err
    with target_root(fresh_dir):
        assert not tt.SlowWriter().complete()
        assert len(list(tmp_dir.iterdir())) == (0 if at_once else 1)
        assert build_sequential([tt.Leaf()]).n_succeeded == 1
    assert list(tmp_dir.iterdir()) == []


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


def test_a_relative_root_from_the_environment_is_resolved_once(no_root_in_code: None, fresh_dir: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A task that changes the working directory does not move where outputs go."""
    monkeypatch.chdir(fresh_dir)
    monkeypatch.setenv(ENV_TARGET_ROOT, "out")
    expected = os.path.join(fresh_dir, "out")
    elsewhere = os.path.join(fresh_dir, "elsewhere")
    os.mkdir(elsewhere)
    first = ChangesDirectory(to=elsewhere)
    second = tt.Sum(deps=(first,), value=1)
    assert build_sequential([second]).n_succeeded == 2
    assert os.getcwd() == elsewhere
    assert get_target_root() == expected
    assert second.output().path.startswith(expected + os.sep) and second.load() == 1
    assert not os.path.exists(os.path.join(elsewhere, "out"))


def test_a_relative_root_in_code_is_resolved_when_set(fresh_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(fresh_dir)
    with target_root("out"):
        monkeypatch.chdir("/")
        assert get_target_root() == os.path.join(fresh_dir, "out")


class ChangesDirectory(AutoTask[int]):
    to: str

    def run(self) -> None:
        os.chdir(self.to)
        self.output().save(0)


# -- STARDAG_TARGET_ROOTS ---------------------------------------------------------


def test_named_roots_from_the_environment(no_root_in_code: None, fresh_dir: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(fresh_dir)
    monkeypatch.setenv(ENV_TARGET_ROOTS, json.dumps({"default": "out", "archive": "memory://archive"}))
    assert get_target_root() == get_target_root("default") == os.path.join(fresh_dir, "out")
    assert get_target_root("archive") == "memory://archive"
    task = tt.WhereAmI(tag="named roots")
    assert build_sequential([task]).n_succeeded == 1
    assert task.load()["root"] == os.path.join(fresh_dir, "out")
    with pytest.raises(TargetError, match="no target root named 'scratch'") as raised:
        get_target_root("scratch")
    assert "'archive', 'default'" in str(raised.value) and ENV_TARGET_ROOTS in str(raised.value)


def test_which_root_wins(no_root_in_code: None, fresh_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Code, then STARDAG_TARGET_ROOT, then STARDAG_TARGET_ROOTS["default"], then ~/.stardag/targets."""
    single, named = os.path.join(fresh_dir, "single"), os.path.join(fresh_dir, "named")
    monkeypatch.setenv(ENV_TARGET_ROOTS, json.dumps({"default": named, "other": fresh_dir}))
    assert get_target_root() == named
    monkeypatch.setenv(ENV_TARGET_ROOT, single)
    assert get_target_root() == single and get_target_root("other") == fresh_dir
    with target_root(fresh_dir):
        assert get_target_root() == fresh_dir
    monkeypatch.setenv(ENV_TARGET_ROOTS, json.dumps({"other": fresh_dir}))
    monkeypatch.delenv(ENV_TARGET_ROOT)
    assert get_target_root() == os.path.expanduser(os.path.join("~", ".stardag", "targets"))


@pytest.mark.parametrize(("value", "says"), [
    ('{"default": "/x",}', "is not valid JSON"),
    ("/just/a/path", "is not valid JSON"),
    ('["/x"]', "must be a JSON object of named roots"),
    ('{"default": 3}', "['default'] must be a path string"),
    ('{"default": ""}', "['default'] '' is empty"),
])
def test_a_bad_roots_variable_is_a_clear_error(value: str, says: str, no_root_in_code: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_TARGET_ROOTS, value)
    with pytest.raises(TargetError) as raised:
        get_target_root()
    message = str(raised.value)
    assert ENV_TARGET_ROOTS in message and says in message, message
    with pytest.raises(TargetError, match=ENV_TARGET_ROOTS):  # the build says so, before any task runs
        build_sequential([tt.Leaf()])


def test_process_workers_use_the_default_of_the_named_roots(no_root_in_code: None, fresh_dir: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(fresh_dir)
    monkeypatch.setenv(ENV_TARGET_ROOTS, json.dumps({"default": "relative"}))
    task = tt.WhereAmI(tag="named")
    runner = HybridConcurrentTaskRunner(
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="process"),
        max_process_workers=1, process_start_method="spawn")
    assert build([task], task_runner=runner).n_succeeded == 1
    assert task.load()["root"] == os.path.join(fresh_dir, "relative")


# -- load errors and removal ------------------------------------------------------


def _corrupt(task: Any, data: bytes) -> None:
    target = task.output()
    if isinstance(target, InMemoryTarget):
        target._store(data)
    else:
        Path(target.path).parent.mkdir(parents=True, exist_ok=True)
        Path(target.path).write_bytes(data)


@pytest.mark.parametrize(("cls", "data", "error"), [
    (SaveDict, b'{"a": [1, 2', "JSONDecodeError"),
    (SaveThing, pickle.dumps(PickledThing(1))[:-5], "UnpicklingError"),
    (SaveModel, b'{"x": "not an int", "y": 1}', "ValidationError"),
    (SaveInt, b"", "JSONDecodeError"),
])
@pytest.mark.parametrize("where", ["file", "memory"])
def test_an_output_that_cannot_be_loaded_names_path_task_and_fix(cls: type, data: bytes, error: str, where: str,
                                                                  root: str) -> None:
    with target_root(root if where == "file" else "memory://load-errors"):
        task = cls()
        _corrupt(task, data)
        assert task.complete()  # it exists: only loading tells
        with pytest.raises(TargetError) as raised:
            task.load()
        message = str(raised.value)
        assert repr(task.output().path) in message and repr(task) in message, message
        assert error in message and "rebuild=[task]" in message and "output().remove()" in message
        assert raised.value.__cause__ is not None and type(raised.value.__cause__).__name__ == error
        task.output().remove()
        assert not task.complete()
        task.output().remove()  # nothing there: no error
    clear_memory_root("memory://load-errors")


@pytest.mark.parametrize("where", ["file", "memory"])
def test_loading_a_missing_output_names_the_task(where: str, root: str) -> None:
    with target_root(root if where == "file" else "memory://missing"):
        task = SaveDict()
        with pytest.raises(TaskOutputMissingError) as raised:
            task.load()
        assert isinstance(raised.value, FileNotFoundError)  # what callers caught before
        assert repr(task) in str(raised.value) and repr(task.output().path) in str(raised.value)
        with pytest.raises(TaskOutputMissingError):
            task.output().open("r")


def test_a_target_made_by_hand_still_explains_itself(fresh_dir: str) -> None:
    target = LocalTarget(os.path.join(fresh_dir, "x.json"), JSONSerializer())
    Path(target.path).write_text("{")
    with pytest.raises(TargetError, match="the task that writes it"):
        target.load()
    assert target.owner is None


def test_remove_then_build_repairs_a_corrupt_output(root: str) -> None:
    leaf = tt.Leaf(value=5)
    top = tt.Sum(deps=(leaf,))
    build_sequential([top])
    _corrupt(leaf, b"\x80garbage")
    leaf.output().remove()
    assert build_sequential([leaf]).n_succeeded == 1 and leaf.load() == 5


def test_rebuild_of_a_task_below_a_complete_root_and_of_an_unremovable_output(root: str) -> None:
    leaf = tt.Leaf(value=6)
    top = tt.Sum(deps=(leaf,))
    build_sequential([top])
    summary = build_sequential([top], rebuild=leaf)  # top is complete: only leaf runs
    assert (summary.n_succeeded, summary.n_previously_complete) == (1, 1)
    assert tt.done_ids(root).count(leaf.id) == 2
    with pytest.raises(TargetError, match="has no remove"):
        build_sequential([], rebuild=[NoRemove()])
    # A task without output has nothing to delete: rebuilding it runs it (as every build does).
    summary = build_sequential([], rebuild=[tt.NoOutputTask(value=6)])
    assert summary.n_succeeded == 1 and tt.done_ids(root).count(tt.NoOutputTask(value=6).id) == 1


class NoRemove(AutoTask[int]):
    def output(self) -> Any:
        return LocalTargetWithoutRemove()

    def run(self) -> None: ...


class LocalTargetWithoutRemove:
    def exists(self) -> bool:
        return True


# -- open / open_aio ---------------------------------------------------------------


@pytest.fixture(params=["file", "memory"])
def any_root(request: pytest.FixtureRequest, root: str) -> Any:
    if request.param == "file":
        yield root
        return
    with target_root("memory://open-api") as name:
        yield name
    clear_memory_root("memory://open-api")


def test_open_writes_and_reads_text_and_bytes(any_root: str) -> None:
    target = SaveStr().output()
    with target.open("w") as f:
        f.write("héllo\n")
        f.write("wörld ✓")
    with target.open("r") as f:
        assert f.read() == "héllo\nwörld ✓"
    with target.open("rb") as f:
        assert f.read() == "héllo\nwörld ✓".encode()
    with target.open("wb") as f:
        f.write(b"\x00\xff")
    with target.open("rb") as f:
        assert f.read() == b"\x00\xff"
    with target.open("w") as f:
        f.write('"json too"')
    assert SaveStr().load() == "json too"  # the serializer reads what open() wrote
    assert files_or_keys(any_root) == [target.path]


def files_or_keys(root: str) -> list[str]:
    if root.startswith("memory://"):
        return sorted(target_module._memory_stores.get(root, {}))
    return [os.path.join(root, f) for f in files_under(root)]


def test_nothing_is_visible_before_a_clean_exit_and_an_error_leaves_nothing(any_root: str) -> None:
    target = SaveStr().output()
    with target.open("w") as f:
        f.write("partial")
        assert not target.exists()
    assert target.exists()
    with pytest.raises(RuntimeError, match="mid-write"):
        with target.open("w") as f:
            f.write("something else")
            raise RuntimeError("mid-write")
    with target.open("r") as f:
        assert f.read() == "partial"  # the previous output, whole
    target.remove()
    with pytest.raises(RuntimeError):
        with target.open("wb") as f:
            f.write(b"x")
            raise RuntimeError("first write fails")
    assert not target.exists() and files_or_keys(any_root) == []


def test_close_commits_and_a_dropped_handle_leaves_nothing(any_root: str) -> None:
    target = SaveStr().output()
    f = target.open("w")
    f.write("closed by hand")
    f.close()
    f.close()  # twice is fine
    assert target.open("r").read() == "closed by hand"
    target.remove()
    f = target.open("w")
    f.write("forgotten")
    del f
    assert not target.exists() and files_or_keys(any_root) == []


def test_open_refuses_unknown_modes(any_root: str) -> None:
    target = SaveStr().output()
    for mode in ("a", "r+", "x", "w+b", "rt"):
        with pytest.raises(ValueError, match="use 'r', 'rb', 'w' or 'wb'"):
            target.open(mode)
        with pytest.raises(ValueError, match=repr(mode)):
            target.open_aio(mode)


def test_open_aio_writes_and_reads(any_root: str) -> None:
    target = SaveStr().output()

    async def main() -> tuple[str, bytes]:
        async with target.open_aio("w") as f:
            await f.write("async ✓")
            assert not target.exists()
        async with target.open_aio("r") as f:
            text = await f.read()
        async with target.open_aio("wb") as f:
            await f.write(b"\x01\x02")
        async with target.open_aio("rb") as f:
            data = await f.read()
        return text, data

    assert asyncio.run(main()) == ("async ✓", b"\x01\x02")
    assert files_or_keys(any_root) == [target.path]


def test_open_aio_leaves_nothing_on_an_error_or_a_cancellation(any_root: str) -> None:
    target = SaveStr().output()

    async def fails() -> None:
        async with target.open_aio("w") as f:
            await f.write("x")
            raise RuntimeError("mid-write")

    async def cancelled() -> None:
        started = asyncio.Event()

        async def write() -> None:
            async with target.open_aio("w") as f:
                await f.write("y")
                started.set()
                await asyncio.sleep(60)

        job = asyncio.ensure_future(write())
        await started.wait()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    with pytest.raises(RuntimeError, match="mid-write"):
        asyncio.run(fails())
    asyncio.run(cancelled())
    assert not target.exists() and files_or_keys(any_root) == []


def test_open_aio_runs_file_calls_off_the_event_loop(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    threads = []
    real = LocalTarget.open

    def spy(self: Any, mode: str = "r") -> Any:
        threads.append(threading.get_ident())
        return real(self, mode)

    monkeypatch.setattr(LocalTarget, "open", spy)

    async def main() -> None:
        async with SaveStr().output().open_aio("w") as f:
            await f.write("x")

    asyncio.run(main())
    assert threads and threading.get_ident() not in threads


def test_open_aio_says_how_to_use_it(any_root: str) -> None:
    target = SaveStr().output()
    with pytest.raises(TypeError, match="use 'async with"):
        with target.open_aio("w"):
            pass

    async def without_with() -> None:
        await target.open_aio("r").read()

    with pytest.raises(TypeError, match="async with target.open_aio"):
        asyncio.run(without_with())
