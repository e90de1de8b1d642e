"""Registries: lifecycle hooks, called from the build's own thread."""

from __future__ import annotations

import threading

import pytest

import tasks_for_tests as tt
from stardag.build import DefaultExecutionModeSelector, FailMode, HybridConcurrentTaskRunner, build, build_sequential
from stardag.registry import NoOpRegistry, RegistryABC


def test_registry_abc_requires_every_hook() -> None:
    with pytest.raises(TypeError):
        RegistryABC()

    class Partial(RegistryABC):
        def build_start(self, root_tasks):
            pass

    with pytest.raises(TypeError, match="task_fail"):
        Partial()


def test_noop_registry_accepts_every_event(memory_root: str) -> None:
    registry = NoOpRegistry()
    leaf = tt.Leaf()
    for hook, arg in [("build_start", [leaf]), ("task_start", leaf), ("task_complete", leaf)]:
        assert getattr(registry, hook)(arg) is None
    assert registry.task_fail(leaf, ValueError("x")) is None
    summary = build_sequential([leaf], registry=registry)
    assert registry.build_complete(summary) is None


def test_a_runner_refuses_something_that_is_not_a_registry() -> None:
    with pytest.raises(TypeError, match="RegistryABC"):
        HybridConcurrentTaskRunner(registry=object())


def test_sequential_events_come_in_build_order(memory_root: str) -> None:
    """
    top ── mid ── leaf
    """
    leaf = tt.Leaf(value=1)
    mid = tt.Sum(deps=(leaf,))
    top = tt.Sum(deps=(mid,))
    recorder = tt.Recorder()
    summary = build_sequential([top], registry=recorder)
    assert recorder.events == [
        ("build_start", [top.task_id]),
        ("task_start", leaf.task_id), ("task_complete", leaf.task_id),
        ("task_start", mid.task_id), ("task_complete", mid.task_id),
        ("task_start", top.task_id), ("task_complete", top.task_id),
        ("build_complete", summary),
    ]


def test_no_task_events_for_complete_tasks(memory_root: str) -> None:
    leaf = tt.Leaf(value=1)
    build_sequential([leaf])
    recorder = tt.Recorder()
    build_sequential([leaf], registry=recorder)
    assert [kind for kind, _ in recorder.events] == ["build_start", "build_complete"]


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_hooks_run_on_the_build_thread_whatever_runs_the_tasks(mode: str, root: str) -> None:
    bad = tt.Leaf(value=1, fail=True)
    tasks = [tt.Leaf(value=i) for i in range(6)] + [bad, tt.ALeaf(value=3)]
    recorder = tt.Recorder()
    runner = HybridConcurrentTaskRunner(
        registry=recorder, execution_mode_selector=DefaultExecutionModeSelector(sync_run_default=mode),
        max_thread_workers=3, max_process_workers=2)
    summary = build(tasks, task_runner=runner, fail_mode=FailMode.CONTINUE)
    assert recorder.threads == {threading.get_ident()}
    failed = [value for kind, value in recorder.events if kind == "task_fail"]
    assert [(task_id, type(error)) for task_id, error in failed] == [(bad.task_id, ValueError)]
    assert summary.failures[0].error is failed[0][1]
    completed = [value for kind, value in recorder.events if kind == "task_complete"]
    assert len(completed) == summary.n_succeeded == 7


@pytest.mark.parametrize("mode", ["sequential", "thread", "process", "async"])
def test_a_task_with_dynamic_dependencies_is_reported_started_once(mode: str, root: str) -> None:
    """It runs again (or is resumed) after its dependencies: still one task_start, one task_complete."""
    top = tt.ADynamic(value=1) if mode == "async" else tt.Dynamic(value=1)
    recorder = tt.Recorder()
    if mode == "sequential":
        summary = build_sequential([top], registry=recorder)
    else:
        runner = HybridConcurrentTaskRunner(
            registry=recorder,
            execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="thread" if mode == "async" else mode))
        summary = build([top], task_runner=runner)
    assert not summary.failures
    starts = [value for kind, value in recorder.events if kind == "task_start"]
    completes = [value for kind, value in recorder.events if kind == "task_complete"]
    assert starts.count(top.task_id) == 1 and completes.count(top.task_id) == 1
    assert len(starts) == len(set(starts)) == len(completes) == summary.n_succeeded
