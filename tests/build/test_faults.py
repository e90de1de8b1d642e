"""Bad input and faults: each gives a clear error naming the culprit, and loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pydantic
import pytest

import tasks_for_tests as tt
from stardag import (AutoTask, DependencyCycleError, TargetError, TaskDefinitionError, TaskPicklingError,
                     WorkerDiedError)
from stardag.build import (
    BuildStatus,
    DefaultExecutionModeSelector,
    FailMode,
    HybridConcurrentTaskRunner,
    build,
    build_aio,
    build_sequential,
    build_sequential_aio,
)
from stardag.build._executors import OK, ProcessExecutor
from stardag.target import target_root


def runner(mode: str, **kwargs: Any) -> HybridConcurrentTaskRunner:
    return HybridConcurrentTaskRunner(
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default=mode), **kwargs
    )


def run_build(mode: str, tasks: Any, fail_mode: FailMode = FailMode.FAIL_FAST, **kwargs: Any):
    if mode == "sequential":
        return build_sequential(tasks, fail_mode=fail_mode)
    return build(tasks, task_runner=runner(mode, **kwargs), fail_mode=fail_mode)


def worker_processes() -> list[psutil.Process]:
    """Live descendants of this process, except multiprocessing's long-lived helpers."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "forkserver" in cmdline or "resource_tracker" in cmdline:
            continue
        found.append(child)
    return found


def assert_no_workers_left() -> None:
    deadline = time.monotonic() + 5
    while worker_processes() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert worker_processes() == []


SYNC_MODES = ["sequential", "thread", "process", "blocking"]


# -- invalid parameters ------------------------------------------------------


class Needs(AutoTask[int]):
    count: int
    name: str = "x"

    def run(self) -> None:
        self.output().save(self.count)


def test_invalid_parameters_fail_at_construction_with_pydantics_error() -> None:
    with pytest.raises(pydantic.ValidationError, match="count"):
        Needs(count="not a number")
    with pytest.raises(pydantic.ValidationError, match="count"):
        Needs()
    with pytest.raises(pydantic.ValidationError, match="colour"):
        Needs(count=1, colour="red")
    with pytest.raises(pydantic.ValidationError, match="deps"):
        tt.Sum(deps=(1, 2))
    with pytest.raises(pydantic.ValidationError, match="name"):
        Needs(count=1, name=lambda: None)
    task = Needs(count=1)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        task.count = 2
    assert task.count == 1


# -- dependency cycles -------------------------------------------------------


class StaticCycle(AutoTask[int]):
    n: int = 0

    def requires(self) -> Any:
        return StaticCycle(n=(self.n + 1) % 3)

    def run(self) -> None:
        self.output().save(self.n)


def test_a_static_cycle_fails_before_anything_runs_naming_the_cycle(root: str) -> None:
    leaf = tt.Leaf(value=1)
    with pytest.raises(DependencyCycleError) as raised:
        build_sequential([leaf, StaticCycle()])
    error = raised.value
    ids = [StaticCycle(n=n).task_id for n in (0, 1, 2)]
    assert error.cycle == ids + ids[:1]
    assert "StaticCycle(n=0)" in str(error) and "StaticCycle(n=2)" in str(error)
    assert isinstance(error, ValueError)
    assert tt.read_runs(root) == []


@pytest.mark.parametrize("mode", [*SYNC_MODES, "aio"])
def test_a_cycle_through_dynamic_dependencies_fails_naming_the_cycle(mode: str, root: str) -> None:
    """
    CycleA ··> CycleB ── CycleA     (··> yielded, ── required)
    """
    a, b = tt.CycleA(), tt.CycleB()
    with pytest.raises(DependencyCycleError) as raised:
        if mode == "aio":
            asyncio.run(build_aio([a], task_runner=runner("thread")))
        else:
            run_build(mode, [a], max_process_workers=1)
    error = raised.value
    assert set(error.cycle) == {a.task_id, b.task_id}
    assert error.cycle[0] == error.cycle[-1] and len(error.cycle) == 3
    assert "CycleA" in str(error) and "CycleB" in str(error) and "cycle" in str(error)
    assert not a.complete() and not b.complete()
    assert_no_workers_left()


@pytest.mark.parametrize("mode", SYNC_MODES)
def test_a_task_yielding_itself_is_a_cycle(mode: str, root: str) -> None:
    task = tt.YieldsItself()
    with pytest.raises(DependencyCycleError, match="YieldsItself") as raised:
        run_build(mode, [task], max_process_workers=1)
    assert raised.value.cycle == [task.task_id, task.task_id]


# -- tasks that cannot run ---------------------------------------------------


class NoRun(AutoTask[int]):
    """Defines neither run() nor run_aio()."""

    value: int = 0


@pytest.mark.parametrize("mode", [*SYNC_MODES, "sequential_aio"])
def test_a_task_without_run_fails_before_anything_runs_naming_it(mode: str, root: str) -> None:
    top = tt.Sum(deps=(tt.Leaf(value=1), tt.Sum(deps=(NoRun(value=3),))))
    with pytest.raises(TaskDefinitionError) as raised:
        if mode == "sequential_aio":
            asyncio.run(build_sequential_aio([top]))
        else:
            run_build(mode, [top])
    message = str(raised.value)
    assert "NoRun(value=3" in message and "run()" in message and "run_aio()" in message
    assert isinstance(raised.value, TypeError)
    assert tt.read_runs(root) == [] and tt.read_runs(root, "start") == []


def test_a_task_without_run_reached_dynamically_fails_the_task_that_yielded_it(root: str) -> None:
    class YieldsNoRun(AutoTask[int]):
        def run(self) -> Any:
            yield NoRun(value=4)
            self.output().save(1)

    task = YieldsNoRun()
    summary = build_sequential([task, tt.Leaf(value=2)], fail_mode=FailMode.CONTINUE)
    [failure] = summary.failures
    assert failure.task_id == task.task_id
    assert isinstance(failure.error, TaskDefinitionError)
    assert "NoRun(value=4" in str(failure.error)
    assert summary.n_succeeded == 1


# -- process pool: what cannot cross ------------------------------------------


def test_an_unpicklable_task_fails_naming_it_and_the_rest_still_builds(root: str) -> None:
    class LocalTask(AutoTask[int]):  # a local class cannot be pickled by reference
        value: int = 0

        def run(self) -> None:
            self.output().save(self.value)

    bad = LocalTask(value=5)
    good = tt.Leaf(value=6)
    summary = build([bad, good], task_runner=runner("process", max_process_workers=1),
                    fail_mode=FailMode.CONTINUE)
    [failure] = summary.failures
    assert failure.task_id == bad.task_id
    assert isinstance(failure.error, TaskPicklingError)
    assert "LocalTask(value=5)" in str(failure.error) and "worker process" in str(failure.error)
    assert "thread" in str(failure.error)  # the fix: importable class, or thread mode
    assert good.complete() and not bad.complete()
    assert summary.n_succeeded == 1
    assert_no_workers_left()


def test_a_task_with_an_unpicklable_parameter_fails_naming_it(root: str) -> None:
    class LocalModel(pydantic.BaseModel):
        x: int = 1

    class TakesModel(tt.Leaf):
        model: Any = None

    task = TakesModel(value=1, model=LocalModel())
    summary = build([task], task_runner=runner("process", max_process_workers=1))
    [failure] = summary.failures
    assert isinstance(failure.error, TaskPicklingError) and "TakesModel" in str(failure.error)


def test_an_unpicklable_output_value_fails_naming_the_task(root: str) -> None:
    task = tt.SavesLambda()
    summary = build([task], task_runner=runner("process", max_process_workers=1))
    [failure] = summary.failures
    assert failure.task_id == task.task_id and "SavesLambda" in failure.task
    assert isinstance(failure.error, TargetError) and "cannot save a builtins.function as pickle" in str(failure.error)
    assert "lambda" in str(failure.error) and "SavesLambda" in str(failure.error)
    assert not task.complete()


def test_dynamic_dependencies_that_cannot_be_sent_back_fail_the_task_naming_it(root: str) -> None:
    task = tt.YieldsLocalTask(value=2)
    summary = build([task], task_runner=runner("process", max_process_workers=1))
    [failure] = summary.failures
    assert failure.task_id == task.task_id and isinstance(failure.error, TaskPicklingError)
    assert "the outcome of task YieldsLocalTask(value=2" in str(failure.error)
    assert "its worker process" in str(failure.error)
    assert not task.complete()


def test_an_exception_that_cannot_be_unpickled_reaches_the_summary_as_text(root: str) -> None:
    task = tt.RaisesUnreadable()
    summary = build([task], task_runner=runner("process", max_process_workers=1))
    [failure] = summary.failures
    assert failure.task_id == task.task_id
    assert isinstance(failure.error, TaskPicklingError)
    message = str(failure.error)
    assert "task RaisesUnreadable()" in message and "tasks_for_tests.BadError: 1/2" in message
    assert "cannot be sent back as itself (" in message  # and why
    assert "raise BadError(1, 2)" in failure.traceback  # the worker's traceback


def test_an_exception_only_the_worker_can_import_reaches_the_summary_as_text(root: str) -> None:
    task = tt.RaisesWorkerOnlyError()
    summary = build([task], task_runner=runner("process", max_process_workers=1))
    [failure] = summary.failures
    assert failure.task_id == task.task_id and isinstance(failure.error, TaskPicklingError)
    assert "worker_only_errors.WorkerOnlyError: only the worker knows this class" in str(failure.error)
    assert "No module named 'worker_only_errors'" in str(failure.error)
    assert "raise WorkerOnlyError" in failure.traceback


def test_an_exception_that_cannot_be_pickled_is_sent_as_text(root: str) -> None:
    task = tt.RaisesUnpicklable()
    summary = build([task], task_runner=runner("process", max_process_workers=1))
    [failure] = summary.failures
    assert failure.task_id == task.task_id
    assert "RuntimeError: holds a lambda" in str(failure.error)
    assert "tasks_for_tests.py" in failure.traceback  # the worker's traceback survives
    assert "raise error" in failure.traceback


# -- killed workers ----------------------------------------------------------


@pytest.mark.parametrize(("how", "says"), [("exit", "exited with code 7"), ("sigkill", "killed by SIGKILL"),
                                          ("mid-save", "exited with code 9")])
def test_a_killed_worker_fails_its_task_and_the_next_build_resumes(how: str, says: str, root: str) -> None:
    """
    top ── Dies (kills its worker the first time) ── base
     ├──── sum 1 ── base
     └──── sum 2 ── base

    One worker: base and Dies go to it first, so the sums run on its replacement,
    which must be sent base again (a new worker holds no tasks).
    """
    base = tt.Leaf(value=10)
    dies = tt.Dies(how=how, deps=(base,))
    sums = (tt.Sum(deps=(base,), value=1), tt.Sum(deps=(base,), value=2))
    top = tt.Sum(deps=(dies, *sums))
    one_worker = runner("process", max_process_workers=1)

    first = build([top], task_runner=one_worker, fail_mode=FailMode.CONTINUE)

    assert first.status is BuildStatus.FAILURE
    [failure] = first.failures
    assert failure.task_id == dies.task_id
    assert isinstance(failure.error, WorkerDiedError)
    assert says in str(failure.error) and f"Dies(how='{how}'" in str(failure.error)
    assert (first.n_succeeded, first.n_upstream_failed) == (3, 1)
    assert [s.output().load() for s in sums] == [11, 12]
    assert not dies.complete() and not top.complete()
    # mid-save: the temporary file was written, the rename never happened; the
    # build removed the file of its dead worker.
    assert [p for p in Path(root).rglob("*.tmp-*")] == []
    assert_no_workers_left()

    Path(root, f"allow-{dies.task_id}").touch()
    second = build([top], task_runner=one_worker)
    assert second.status is BuildStatus.SUCCESS, second.failures
    assert (second.n_previously_complete, second.n_succeeded) == (3, 2)  # base, sums; Dies, top
    assert top.output().load() == 42 + 11 + 12
    runs = tt.done_ids(root)
    assert sorted(runs) == sorted(t.task_id for t in (base, *sums, dies, top))
    assert_no_workers_left()


def test_an_idle_worker_that_died_unseen_costs_no_task() -> None:
    """A worker killed while idle, its EOF not yet seen by the loop: the task goes to a fresh worker."""
    outcomes: list[tuple] = []

    async def main() -> None:
        executor = ProcessExecutor(2, outcomes.append, "fork")
        try:
            executor.start_workers()
            dead = executor._idle[-1]  # the next one handed a task
            os.kill(dead.process.pid, signal.SIGKILL)
            dead.process.join(5)
            executor.submit(tt.Leaf(value=7), None)  # before the loop could see the EOF
            deadline = time.monotonic() + 30
            while not outcomes and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert dead not in executor._workers
        finally:
            executor.shutdown(False)

    with target_root("memory://idle-worker-death"):  # Leaf saves nothing it must read back
        asyncio.run(main())
    [(_, task_id, kind, payload)] = outcomes
    assert (task_id, kind) == (tt.Leaf(value=7).id, OK), payload
    assert_no_workers_left()


def test_a_killed_worker_under_fail_fast_stops_the_build(root: str) -> None:
    dies = tt.Dies(how="sigkill")
    top = tt.Sum(deps=(dies, tt.Leaf(value=1, sleep=0.1)))
    summary = build([top], task_runner=runner("process", max_process_workers=2))
    assert summary.status is BuildStatus.FAILURE
    assert [f.task_id for f in summary.failures] == [dies.task_id]
    assert isinstance(summary.failures[0].error, WorkerDiedError)
    assert not top.complete()
    assert_no_workers_left()


# -- cancellation ----------------------------------------------------------


def test_cancelling_build_aio_stops_the_process_pool(root: str) -> None:
    """What Ctrl-C does to an application's own event loop: the build task is cancelled."""
    sleepers = [tt.Leaf(value=i, sleep=3) for i in range(4)]

    async def main() -> None:
        build_task = asyncio.ensure_future(build_aio(sleepers, task_runner=runner("process", max_process_workers=2)))
        deadline = time.monotonic() + 30
        while len(tt.read_runs(root, "start")) < 2:
            assert time.monotonic() < deadline and not build_task.done()
            await asyncio.sleep(0.02)
        build_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await build_task

    asyncio.run(main())
    assert worker_processes() == []
    # Not waited for (each sleeps 3 s), and their workers were stopped before they could save.
    time.sleep(0.2)
    assert not any(leaf.complete() for leaf in sleepers)


# -- runner settings and entry points -----------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"max_thread_workers": 0},
    {"max_process_workers": 0},
    {"max_async_workers": 0},
    {"max_thread_workers": -2},
    {"max_process_workers": 1.5},
    {"max_async_workers": "4"},
    {"max_thread_workers": True},
    {"process_start_method": "teleport"},
], ids=lambda kwargs: "-".join(f"{k}={v!r}" for k, v in kwargs.items()))
def test_invalid_runner_settings_raise_value_error_at_construction(kwargs: dict) -> None:
    (name, value), = kwargs.items()
    with pytest.raises(ValueError, match=name) as raised:
        HybridConcurrentTaskRunner(**kwargs)
    assert repr(value) in str(raised.value)


def test_an_unknown_mode_raises_value_error_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="'gpu'") as raised:
        DefaultExecutionModeSelector(sync_run_default="gpu")
    assert all(mode in str(raised.value) for mode in ("'thread'", "'process'", "'blocking'"))
    with pytest.raises(ValueError):
        DefaultExecutionModeSelector(sync_run_default="async")


def test_a_selector_returning_an_unknown_mode_fails_naming_the_task(root: str) -> None:
    leaf = tt.Leaf(value=3)
    with pytest.raises(ValueError, match="'gpu'") as raised:
        build([leaf], task_runner=HybridConcurrentTaskRunner(execution_mode_selector=lambda task: "gpu"))
    assert "Leaf(value=3" in str(raised.value)


def test_an_invalid_fail_mode_raises_value_error(root: str) -> None:
    with pytest.raises(ValueError, match="fail_mode"):
        build([tt.Leaf()], fail_mode="continue")


def test_a_runner_that_is_not_one_or_a_task_class_is_refused_naming_the_fix(root: str) -> None:
    with pytest.raises(TypeError, match=r"task_runner must be a HybridConcurrentTaskRunner, got str: 'thread'; "
                                        r"e\.g\. HybridConcurrentTaskRunner\("):
        build([tt.Leaf()], task_runner="thread")
    with pytest.raises(TypeError, match=r"got the task class Leaf: make one, Leaf\(\.\.\.\)"):
        build([tt.Leaf])


def test_a_build_of_none_is_refused(root: str) -> None:
    """``build(make_dag())`` where make_dag forgot its return: an error, not a successful build of nothing."""
    with pytest.raises(TypeError, match=r"build\(\) got None: pass a task or a list of tasks"):
        build(None)
    assert build([]).n_succeeded == 0


@pytest.mark.parametrize(("entry", "fix"), [(build, "build_aio"), (build_sequential, "build_sequential_aio")])
def test_sync_build_inside_a_running_loop_says_to_use_the_aio_one(entry: Any, fix: str, root: str) -> None:
    leaf = tt.Leaf(value=1)

    async def main() -> None:
        with pytest.raises(RuntimeError, match=f"await {fix}") as raised:
            entry([leaf])
        assert "running event loop" in str(raised.value)

    asyncio.run(main())
    assert not leaf.complete()


# -- requires() and complete() that raise --------------------------------------


class RequiresRaises(tt.Leaf):
    def requires(self) -> Any:
        raise KeyError("no such input")


class CompleteRaises(tt.Leaf):
    def complete(self) -> bool:
        raise OSError("target store unreachable")


class YieldsCompleteRaises(AutoTask[int]):
    """Yields a task whose complete() raises, then a good leaf."""

    def run(self) -> Any:
        yield CompleteRaises(value=9)
        self.output().save(1)


def bad_definitions_dag() -> tuple[Any, ...]:
    """
    top ── RequiresRaises ┄┄ (its requires() raises)
     └──── ok ── leaf 2
    other ── CompleteRaises (its complete() raises)
    third ── leaf 3
    """
    bad_requires, bad_complete = RequiresRaises(value=1), CompleteRaises(value=4)
    ok = tt.Sum(deps=(tt.Leaf(value=2),), value=10)
    top = tt.Sum(deps=(bad_requires, ok))
    other = tt.Sum(deps=(bad_complete,), value=20)
    third = tt.Sum(deps=(tt.Leaf(value=3),), value=30)
    return bad_requires, bad_complete, ok, top, other, third


@pytest.mark.parametrize("mode", SYNC_MODES)
def test_continue_builds_everything_not_downstream_of_a_bad_requires_or_complete(mode: str, root: str) -> None:
    bad_requires, bad_complete, ok, top, other, third = bad_definitions_dag()
    recorder = tt.Recorder()
    if mode == "sequential":
        summary = build_sequential([top, other, third], registry=recorder, fail_mode=FailMode.CONTINUE)
    else:
        summary = build([top, other, third], task_runner=runner(mode, registry=recorder), fail_mode=FailMode.CONTINUE)

    assert summary.status is BuildStatus.FAILURE
    assert (summary.n_discovered, summary.n_succeeded, summary.n_failed, summary.n_upstream_failed) == (8, 4, 2, 2)
    tt.assert_counts_add_up(summary)
    assert ok.load() == 12 and third.load() == 33
    assert not top.complete() and not other.complete()
    by_id = {failure.task_id: failure for failure in summary.failures}
    assert set(by_id) == {bad_requires.id, bad_complete.id}
    for task, method, cause in ((bad_requires, "requires()", KeyError), (bad_complete, "complete()", OSError)):
        failure = by_id[task.id]
        assert isinstance(failure.error, TaskDefinitionError) and isinstance(failure.error.__cause__, cause)
        assert f"{method} of task {task!r} failed" in str(failure.error)
        assert "raise" in failure.traceback and cause.__name__ in failure.traceback
    # The registry hears of both failures, after build_start.
    events = [kind for kind, _ in recorder.events]
    assert events[0] == "build_start" and events.count("task_fail") == 2
    assert_no_workers_left()


@pytest.mark.parametrize("mode", ["sequential", "process"])
def test_fail_fast_records_a_bad_complete_in_the_summary_and_runs_nothing(mode: str, root: str) -> None:
    bad_requires, bad_complete, ok, top, other, third = bad_definitions_dag()
    summary = run_build(mode, [third, other, top])
    assert summary.status is BuildStatus.FAILURE
    [failure] = summary.failures
    assert failure.task_id == bad_complete.id
    assert "complete() of task CompleteRaises(value=4" in str(failure.error) and "unreachable" in str(failure.error)
    assert summary.n_succeeded == 0 and tt.read_runs(root) == []
    tt.assert_counts_add_up(summary)
    with pytest.raises(RuntimeError, match="target store unreachable"):
        summary.raise_for_status()


@pytest.mark.parametrize("mode", ["sequential", "process"])
def test_a_yielded_task_whose_complete_raises_fails_and_its_parent_is_upstream_failed(mode: str, root: str) -> None:
    parent, good = YieldsCompleteRaises(), tt.Leaf(value=5)
    summary = run_build(mode, [parent, good], FailMode.CONTINUE, max_process_workers=1)
    [failure] = summary.failures
    assert failure.task_id == CompleteRaises(value=9).id and "complete()" in str(failure.error)
    assert (summary.n_succeeded, summary.n_upstream_failed) == (1, 1)
    assert good.complete() and not parent.complete()
    tt.assert_counts_add_up(summary)


def test_two_builds_of_one_dag_into_one_root_at_once_both_succeed(scripted: Any) -> None:
    """
    top ── Gated 0, 1 ── leaf 100, leaf 101: a process-pool and a thread-pool build of it at once

    Neither sees the other's gated outputs until both run them: each task runs twice,
    each output is renamed into place whole, and both builds succeed.
    """
    from stopping_harness import gated_ids

    one, two = scripted("process", 2), scripted("thread", 2)
    one.wait_for_gated(4)  # 2 gated tasks in each build
    one.release()
    for run in (one, two):
        result = run.result()
        assert (result["status"], result["n_failed"]) == ("success", 0), run.err
    assert len(gated_ids(one.root)) == 4
    quick = (tt.Leaf(value=100), tt.Leaf(value=101))
    top = tt.Sum(deps=(*quick, *(tt.Gated(value=i, deps=quick) for i in range(2))))
    with target_root(one.root):
        assert top.load() == 100 + 101 + 0 + 1
    assert os.listdir(Path(one.root, ".stardag-tmp")) == []


_UNGUARDED_SCRIPT = """
import sys
import tasks_for_tests as tt
from stardag.build import DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build
from stardag.target import set_target_root

set_target_root(sys.argv[1])
runner = HybridConcurrentTaskRunner(execution_mode_selector=DefaultExecutionModeSelector("process"),
                                    max_process_workers=1, process_start_method="spawn")
summary = build([tt.Leaf(value=1)], task_runner=runner)  # no 'if __name__ == "__main__":'
print(summary.failures[0].error if summary.failures else summary.status)
"""


def test_a_script_without_the_main_guard_is_told_about_it(fresh_dir: str) -> None:
    import subprocess
    import sys

    from conftest import subprocess_env

    script = Path(fresh_dir, "unguarded.py")
    script.write_text(_UNGUARDED_SCRIPT)
    done = subprocess.run([sys.executable, str(script), os.path.join(fresh_dir, "root")], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert "a worker started by 'spawn' imports the main script again" in done.stdout, done.stdout + done.stderr
    assert """'if __name__ == "__main__":'""" in done.stdout
