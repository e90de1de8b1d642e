"""One behavioural suite, run under every build configuration.

Configurations (the ``config`` fixture):

- ``sequential``: ``build_sequential``, sync tasks inline, one at a time.
- ``sequential_aio``: ``build_sequential_aio``, tasks with ``run_aio`` awaited one at a time.
- ``thread`` / ``process`` / ``blocking``: ``build`` with ``HybridConcurrentTaskRunner`` and
  ``DefaultExecutionModeSelector(sync_run_default=...)``, sync tasks.
- ``async``: ``build_aio`` with the default runner, tasks that define only ``run_aio``.
- ``dask``: ``build`` with ``sync_run_default="dask"`` on one LocalCluster of 2 worker
  processes (one thread each), started once in a child process (a scheduler in this
  process would leave a thread behind, and later process pools would lose fork);
  only where dask is installed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import importlib.util
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import tasks_for_tests as tt
from conftest import DASK_WORKERS
from stardag.build import (
    BuildStatus,
    BuildSummary,
    DefaultExecutionModeSelector,
    FailMode,
    HybridConcurrentTaskRunner,
    build,
    build_aio,
    build_sequential,
    build_sequential_aio,
)
from stardag.build import _driver
from stardag.errors import TargetError, TaskDefinitionError, TaskOutputMissingError
from stardag.registry import NoOpRegistry, RegistryABC

HAS_DASK = importlib.util.find_spec("distributed") is not None
CONFIGS = ["sequential", "sequential_aio", "thread", "process", "blocking", "async"] + ["dask"] * HAS_DASK
CONCURRENT = {"thread", "process", "async", "dask"}
OTHER_PROCESSES = {"process", "dask"}


@dataclasses.dataclass
class Config:
    name: str
    family: tt.Family
    _build: Callable[..., BuildSummary]

    def build(self, tasks: Any, fail_mode: FailMode = FailMode.FAIL_FAST, rebuild: Any = None,
              **runner_kwargs: Any) -> BuildSummary:
        return self._build(tasks, fail_mode, rebuild, **runner_kwargs)


def _runner(mode: str, registry: RegistryABC | None = None, **kwargs: Any) -> HybridConcurrentTaskRunner:
    kwargs.setdefault("max_thread_workers", 4)
    kwargs.setdefault("max_process_workers", 4)
    return HybridConcurrentTaskRunner(
        registry=registry or NoOpRegistry(),
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default=mode),
        **kwargs,
    )


def _make_config(name: str, dask_address: str | None = None) -> Config:
    if name == "sequential":
        def run(tasks, fail_mode, rebuild, registry=None):
            return build_sequential(tasks, registry=registry, fail_mode=fail_mode, rebuild=rebuild)
        return Config(name, tt.SYNC, run)
    if name == "sequential_aio":
        def run(tasks, fail_mode, rebuild, registry=None):
            return asyncio.run(build_sequential_aio(tasks, registry=registry, fail_mode=fail_mode,
                                                    rebuild=rebuild))
        return Config(name, tt.ASYNC, run)
    if name == "async":
        def run(tasks, fail_mode, rebuild, **kwargs):
            return asyncio.run(build_aio(tasks, task_runner=_runner("thread", **kwargs), fail_mode=fail_mode,
                                         rebuild=rebuild))
        return Config(name, tt.ASYNC, run)

    if name == "dask":
        def run(tasks, fail_mode, rebuild, **kwargs):
            runner = _runner("dask", dask_address=dask_address, **kwargs)
            return build(tasks, task_runner=runner, fail_mode=fail_mode, rebuild=rebuild)
        return Config(name, tt.SYNC, run)

    def run(tasks, fail_mode, rebuild, **kwargs):
        return build(tasks, task_runner=_runner(name, **kwargs), fail_mode=fail_mode, rebuild=rebuild)
    return Config(name, tt.SYNC, run)


def _config_for(name: str, request: pytest.FixtureRequest) -> Config:
    if name == "dask":  # conftest's cluster, closed with this module
        return _make_config("dask", request.getfixturevalue("dask_cluster"))
    return _make_config(name)


@pytest.fixture(params=CONFIGS)
def config(request: pytest.FixtureRequest, root: str) -> Config:
    return _config_for(request.param, request)


# -- success -----------------------------------------------------------------


def test_builds_a_static_dag_bottom_up(config: Config, root: str) -> None:
    """
    root(100) ── mid(10) ── leaf 1
        │            └───── leaf 2
        └─────── leaf 3
    """
    f = config.family
    leaves = [f.Leaf(value=v) for v in (1, 2, 3)]
    mid = f.Sum(deps=tuple(leaves[:2]), value=10)
    top = f.Sum(deps=(mid, leaves[2]), value=100)

    summary = config.build([top])

    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert (summary.n_discovered, summary.n_succeeded) == (5, 5)
    assert (summary.n_previously_complete, summary.n_failed, summary.n_upstream_failed, summary.n_not_run) == (0, 0, 0, 0)
    assert summary.failures == ()
    assert top.output().load() == 116
    assert mid.load() == 13
    order = tt.done_ids(root)
    assert sorted(order) == sorted(t.task_id for t in [*leaves, mid, top])
    assert order.index(mid.task_id) > max(order.index(leaves[0].task_id), order.index(leaves[1].task_id))
    assert order[-1] == top.task_id
    summary.raise_for_status()


def test_accepts_a_single_task_and_nested_collections_as_roots(config: Config, root: str) -> None:
    f = config.family
    a, b, c = (f.Leaf(value=v) for v in (1, 2, 3))
    summary = config.build({"x": [a, (b,)], "y": c})
    assert summary.n_succeeded == 3 and all(t.complete() for t in (a, b, c))
    d = f.Leaf(value=4)
    assert config.build(d).n_succeeded == 1 and d.complete()


def test_a_task_reached_through_many_paths_runs_once(config: Config, root: str) -> None:
    """
    layer 0:        shared leaf
                   /   |   |   \\
    layer 1..4:   four tasks per layer, each requiring all four of the layer below
                   \\   |   |   /
    top:               one Sum          (4**4 paths from top to the shared leaf)
    """
    f = config.family
    layer = [f.Leaf(value=7)]
    for depth in range(1, 5):
        layer = [f.Sum(deps=tuple(layer), value=depth * 10 + i) for i in range(4)]
    top = f.Sum(deps=tuple(layer))
    summary = config.build([top, top, layer[0]])  # duplicate roots too

    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert summary.n_discovered == summary.n_succeeded == 1 + 4 * 4 + 1
    runs = collections.Counter(tt.done_ids(root))
    assert len(runs) == 18 and set(runs.values()) == {1}


def test_skips_tasks_already_complete(config: Config, root: str) -> None:
    """
    top ── mid ── a
     │      └──── b
     └─── c
    """
    f = config.family
    a, b, c = (f.Leaf(value=v) for v in (1, 2, 3))
    mid = f.Sum(deps=(a, b))
    top = f.Sum(deps=(mid, c))

    first = config.build([mid])
    assert (first.n_discovered, first.n_succeeded) == (3, 3)

    second = config.build([top])
    assert second.status is BuildStatus.SUCCESS, second.failures
    # mid is complete, so discovery stops there: a and b are never even looked at.
    assert (second.n_discovered, second.n_previously_complete, second.n_succeeded) == (3, 1, 2)
    assert collections.Counter(tt.done_ids(root)) == {t.task_id: 1 for t in (a, b, c, mid, top)}

    third = config.build([top])
    assert (third.n_discovered, third.n_previously_complete, third.n_succeeded) == (1, 1, 0)
    assert third.status is BuildStatus.SUCCESS
    assert len(tt.done_ids(root)) == 5


def test_dynamic_dependencies_are_built_before_the_generator_resumes(config: Config, root: str) -> None:
    """
    top(Sum) ── dyn ··> leaf 0, leaf 1, leaf 2      (yielded first)
                    ··> Sum(-1 leaf, -2 leaf)        (yielded second, has static deps)
    """
    f = config.family
    dyn = f.Dynamic(n=3, value=1)
    top = f.Sum(deps=(dyn,), value=5)

    summary = config.build([top])

    assert summary.status is BuildStatus.SUCCESS, summary.failures
    # top, dyn, 3 leaves, the second Sum and its 2 leaves.
    assert summary.n_discovered == summary.n_succeeded == 8
    expected = 1 + (1000 + 1001 + 1002) + (1 + (-1) + (-2))
    assert dyn.output().load() == expected
    assert top.output().load() == expected + 5
    runs = tt.done_ids(root)
    assert collections.Counter(runs)[dyn.task_id] == 1
    second = dyn.second()
    assert runs.index(second.task_id) < runs.index(dyn.task_id) < runs.index(top.task_id)


def test_dynamic_dependencies_already_complete_are_not_rebuilt(config: Config, root: str) -> None:
    f = config.family
    dyn = f.Dynamic(n=2)
    config.build(dyn.first())
    summary = config.build([dyn])
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert summary.n_succeeded == 1 + 1 + 2  # dyn, the second Sum and its two leaves
    assert len(tt.done_ids(root)) == 2 + 4


def test_dynamic_dependencies_already_complete_count_as_previously_complete(config: Config, root: str) -> None:
    """The summary's counts do not depend on where a task ran."""
    f = config.family
    dyn = f.Dynamic(n=2)
    config.build(dyn.first())
    summary = config.build([dyn])
    assert summary.n_previously_complete == 2, summary
    assert summary.n_discovered == 2 + 4, summary


def test_dynamic_dependency_shared_with_a_static_one_runs_once(config: Config, root: str) -> None:
    """
    top ── dyn ··> leaf 0, leaf 1 ...
     └──── leaf 0                        (the same task, reached statically)
    """
    f = config.family
    dyn = f.Dynamic(n=2)
    top = f.Sum(deps=(dyn, dyn.first()[0]))
    summary = config.build([top])
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert set(collections.Counter(tt.done_ids(root)).values()) == {1}
    assert summary.n_succeeded == summary.n_discovered == 1 + 1 + 2 + 1 + 2


def test_dynamic_dependencies_shared_by_two_tasks_run_once(config: Config, root: str) -> None:
    """
    top ── dyn(n=3) ··> leaf 0, leaf 1, leaf 2 ··> Sum(leaf -1, leaf -2)
     └──── dyn(n=2) ··> leaf 0, leaf 1         ··> the same Sum
    """
    f = config.family
    top = f.Sum(deps=(f.Dynamic(n=3), f.Dynamic(n=2)))
    summary = config.build([top])
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert summary.n_succeeded == summary.n_discovered == 1 + 2 + 3 + 1 + 2
    assert set(collections.Counter(tt.done_ids(root)).values()) == {1}


# -- failures ----------------------------------------------------------------


def _failing_dag(f: tt.Family, sleep: float = 0.0) -> tuple[Any, Any, list[Any]]:
    """
    top ── bad leaf (fails at once)
     └──── link 4 ── link 3 ── link 2 ── link 1 ── leaf (sleeps ``sleep`` s)
    """
    bad = f.Leaf(value=-1, fail=True)
    links = [f.Leaf(value=0, sleep=sleep)]
    for i in range(1, 5):
        links.append(f.Sum(deps=(links[-1],), value=i))
    top = f.Sum(deps=(bad, links[-1]))
    return top, bad, links


def test_fail_fast_starts_nothing_new_after_a_failure(config: Config, root: str) -> None:
    f = config.family
    # The sleep gives the failure a head start over the chain, even when worker processes
    # are slow to start on a loaded machine.
    top, bad, links = _failing_dag(f, sleep=0.5)
    summary = config.build([top], FailMode.FAIL_FAST)

    assert summary.status is BuildStatus.FAILURE
    assert summary.n_failed == 1
    [failure] = summary.failures
    assert failure.task_id == bad.task_id
    assert isinstance(failure.error, ValueError)
    assert "fails on purpose" in str(failure.error)
    assert "fails on purpose" in failure.traceback and "Traceback" in failure.traceback
    tt.assert_counts_add_up(summary)
    assert summary.n_discovered == 7
    assert summary.n_not_run + summary.n_upstream_failed >= 1
    # The chain's upper links can only start after its sleeping leaf, long after the failure.
    assert not top.complete() and not links[-1].complete() and not links[2].complete()
    assert summary.n_succeeded <= 1
    if config.name not in CONCURRENT:  # one at a time: the failing leaf is first in line
        assert (summary.n_succeeded, summary.n_not_run, summary.n_upstream_failed) == (0, 5, 1)
    with pytest.raises(RuntimeError, match="build failed") as raised:
        summary.raise_for_status()
    assert raised.value.__cause__ is failure.error


def test_continue_builds_everything_not_downstream_of_a_failure(config: Config, root: str) -> None:
    f = config.family
    top, bad, links = _failing_dag(f)
    summary = config.build([top], FailMode.CONTINUE)

    assert summary.status is BuildStatus.FAILURE
    assert (summary.n_failed, summary.n_upstream_failed, summary.n_not_run) == (1, 1, 0)
    assert summary.n_succeeded == len(links)
    assert summary.failures[0].task_id == bad.task_id
    tt.assert_counts_add_up(summary)
    assert all(link.complete() for link in links)
    assert not top.complete() and not bad.complete()

    # Nothing lost: the next build reuses the links and fails only where it must.
    again = config.build([top], FailMode.CONTINUE)
    assert (again.n_previously_complete, again.n_succeeded, again.n_failed) == (1, 0, 1)
    assert collections.Counter(tt.done_ids(root)) == {t.task_id: 1 for t in links}


def test_continue_marks_everything_downstream_of_a_failure(config: Config, root: str) -> None:
    """
    top ── a ── b ── bad
     │     └──────── bad
     └──── ok leaf
    """
    f = config.family
    bad = f.Leaf(value=1, fail=True)
    b = f.Sum(deps=(bad,))
    a = f.Sum(deps=(b, bad))
    ok = f.Leaf(value=2)
    top = f.Sum(deps=(a, ok))
    summary = config.build([top], FailMode.CONTINUE)
    assert (summary.n_failed, summary.n_upstream_failed, summary.n_succeeded) == (1, 3, 1)
    assert ok.complete() and not any(t.complete() for t in (bad, b, a, top))
    tt.assert_counts_add_up(summary)


def test_a_failing_dynamic_dependency_fails_only_what_waits_on_it(config: Config, root: str) -> None:
    """
    top ── dyn ··> leaf 0 (fails), leaf 1, leaf 2
     └──── ok leaf
    """
    f = config.family
    dyn = f.Dynamic(n=3, fail_leaf=True)
    ok = f.Leaf(value=5)
    top = f.Sum(deps=(dyn, ok))
    summary = config.build([top], FailMode.CONTINUE)
    assert summary.n_failed == 1
    assert summary.failures[0].task_id == dyn.first()[0].task_id
    assert summary.n_upstream_failed == 2  # dyn and top
    assert summary.n_succeeded == 3  # leaves 1 and 2, ok
    assert ok.complete() and not dyn.complete()
    tt.assert_counts_add_up(summary)


def test_a_failing_task_with_dynamic_dependencies_is_reported(config: Config, root: str) -> None:
    f = config.family
    dyn = f.Dynamic(n=1, fail=True)
    summary = config.build([dyn], FailMode.CONTINUE)
    assert summary.n_failed == 1 and summary.failures[0].task_id == dyn.task_id
    assert isinstance(summary.failures[0].error, ValueError)
    assert summary.n_succeeded == 4 and not dyn.complete()


# -- done means done -----------------------------------------------------------


SYNC_OR_ASYNC = {tt.SYNC: (tt.Silent, tt.Yields, tt.FileIO, tt.SavesThenFails),
                 tt.ASYNC: (tt.ASilent, tt.AYields, tt.AFileIO, tt.ASavesThenFails)}


@contextlib.contextmanager
def livelock_guard(seconds: float = 60) -> Iterator[None]:
    """Fail, instead of hanging, when the build inside runs for ``seconds``: Ctrl-C stops it."""
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        yield
    except KeyboardInterrupt:
        pytest.fail(f"the build was still running after {seconds} s: a livelock")
    finally:
        timer.cancel()


def test_a_task_that_writes_nothing_fails_naming_its_output(config: Config, root: str) -> None:
    """
    top(Sum) ── silent (run() returns without saving)
     └───────── ok leaf
    """
    silent_cls = SYNC_OR_ASYNC[config.family][0]
    silent = silent_cls(value=1)
    ok = config.family.Leaf(value=2)
    top = config.family.Sum(deps=(silent, ok))
    summary = config.build([top], FailMode.CONTINUE)

    assert (summary.n_failed, summary.n_upstream_failed, summary.n_succeeded) == (1, 1, 1), summary
    [failure] = summary.failures  # the dependent never ran: no FileNotFoundError naming it
    assert failure.task_id == silent.id
    assert isinstance(failure.error, TaskOutputMissingError)
    message = str(failure.error)
    assert repr(silent) in message and repr(silent.output().path) in message
    assert "without writing its output" in message and "save" in message
    assert not top.complete() and ok.complete()
    tt.assert_counts_add_up(summary)
    if config.name in ("sequential", "blocking", "thread"):  # run() returned normally, in this process
        assert [r[1] for r in tt.read_runs(root, "start")].count(silent.id) == 1


def test_a_task_that_saved_then_failed_leaves_no_output_and_runs_again(config: Config, root: str) -> None:
    """
    top(Sum) ── failed (saves its output, then raises)
    """
    failed = SYNC_OR_ASYNC[config.family][3](value=1)
    top = config.family.Sum(deps=(failed,))
    summary = config.build([top], FailMode.CONTINUE)
    assert (summary.n_failed, summary.n_upstream_failed) == (1, 1), summary
    # What a failed run wrote is not a result: the next build runs it again, and
    # never hands it to the task that depends on it.
    assert not failed.complete()
    again = config.build([top], FailMode.CONTINUE)
    assert (again.n_previously_complete, again.n_failed, again.n_upstream_failed) == (0, 1, 1), again
    assert [f.task_id for f in again.failures] == [failed.id]
    assert not top.complete()


def test_a_dynamic_dependency_that_writes_nothing_fails_its_parent_once(config: Config, root: str) -> None:
    """
    parent ··> silent (yielded; its run() returns without saving)

    The parent runs once: neither resumed nor re-run (a worker process re-ran it for ever).
    """
    silent_cls, yields_cls, *_ = SYNC_OR_ASYNC[config.family]
    silent = silent_cls(value=7)
    parent = yields_cls(deps=(silent,))
    with livelock_guard():
        summary = config.build([parent], FailMode.CONTINUE)
    assert (summary.n_failed, summary.n_upstream_failed) == (1, 1), summary
    assert summary.failures[0].task_id == silent.id
    assert isinstance(summary.failures[0].error, TaskOutputMissingError)
    starts = [task_id for _, task_id, _, _ in tt.read_runs(root, "start")]
    assert starts.count(parent.id) == 1 and not parent.complete()


@pytest.mark.parametrize("mode", [name for name in CONFIGS if name not in OTHER_PROCESSES])
def test_a_dynamic_dependency_whose_output_disappears_fails_its_parent(mode: str, root: str) -> None:
    """A yielded task that ran, and whose output is gone when its parent resumes.

    (In a worker process the parent runs again instead, and finds it missing: see
    the tests below.)
    """
    config = _make_config(mode)
    f = config.family
    leaf = f.Leaf(value=3)
    parent = SYNC_OR_ASYNC[f][1](deps=(leaf,))

    class RemovesOnComplete(tt.Recorder):
        def task_complete(self, task):
            super().task_complete(task)
            if task == leaf:
                leaf.output().remove()

    summary = config.build([parent], FailMode.CONTINUE, registry=RemovesOnComplete())
    assert summary.n_failed == 1 and summary.failures[0].task_id == parent.id, summary
    error = summary.failures[0].error
    assert isinstance(error, TaskOutputMissingError)
    assert "still incomplete after it ran" in str(error) and repr(leaf) in str(error)


@pytest.mark.parametrize("mode", sorted(OTHER_PROCESSES & set(CONFIGS)))
def test_a_dynamic_dependency_complete_here_but_not_in_the_worker_fails_the_parent(
        mode: str, root: str, request: pytest.FixtureRequest) -> None:
    """Complete for the build, missing for the worker that runs the parent: bounded, not a livelock."""
    config = _config_for(mode, request)
    dep = tt.CompleteOnlyIn(pid=os.getpid())
    parent = tt.Yields(deps=(dep,))
    with livelock_guard():
        summary = config.build([parent], FailMode.CONTINUE)
    [failure] = summary.failures
    assert failure.task_id == parent.id and isinstance(failure.error, TaskOutputMissingError)
    assert repr(dep) in str(failure.error) and "visible to every process" in str(failure.error)
    starts = [task_id for _, task_id, _, _ in tt.read_runs(root, "start")]
    assert starts.count(parent.id) == 2  # it yielded dep once more after dep was found complete


def test_a_dynamic_dependency_without_output(config: Config, root: str) -> None:
    """In this process the parent resumes once it ran; a worker process cannot tell, and says so."""
    dep = tt.NoOutputTask(value=1)
    parent = tt.Yields(deps=(dep,))
    if config.family is tt.ASYNC:
        parent = tt.AYields(deps=(dep,))
    with livelock_guard():
        summary = config.build([parent], FailMode.CONTINUE)
    if config.name in OTHER_PROCESSES:
        [failure] = summary.failures
        assert failure.task_id == parent.id and isinstance(failure.error, TaskOutputMissingError)
        assert "has no output" in str(failure.error) and "'thread' mode" in str(failure.error)
    else:
        assert summary.status is BuildStatus.SUCCESS, summary.failures
        assert parent.load() == 1


@pytest.mark.parametrize("mode", sorted(OTHER_PROCESSES & set(CONFIGS)))
def test_a_parent_is_re_run_a_bounded_number_of_times(mode: str, root: str, request: pytest.FixtureRequest,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run() that yields a new task every time would be re-run for ever in a worker process."""
    monkeypatch.setattr(_driver, "MAX_RERUNS", 4)
    config = _config_for(mode, request)
    parent = tt.YieldsSomethingNew()
    with livelock_guard():
        summary = config.build([parent], FailMode.CONTINUE)
    [failure] = summary.failures
    assert failure.task_id == parent.id and isinstance(failure.error, TaskDefinitionError)
    assert "was run 5 times" in str(failure.error) and "yield the same tasks" in str(failure.error)
    starts = [task_id for _, task_id, _, _ in tt.read_runs(root, "start")]
    assert starts.count(parent.id) == 5


def test_open_and_open_aio_outputs_build_in_every_configuration(config: Config, root: str) -> None:
    """
    top ── mid ── leaf      (each writes through output().open("w") or open_aio("w"))
    """
    cls = SYNC_OR_ASYNC[config.family][2]
    leaf = cls(value=1)
    mid = cls(deps=(leaf,), value=10)
    top = cls(deps=(mid, leaf), value=100)
    summary = config.build([top])
    assert summary.status is BuildStatus.SUCCESS and summary.n_succeeded == 3, summary.failures
    assert top.load() == {"value": 112}
    assert [p for p in Path(root).rglob("*.tmp-*")] == []


def test_rebuild_runs_chosen_tasks_again(config: Config, root: str) -> None:
    """
    top ── mid ── a
            └──── b        build all; corrupt a; rebuild=[a] repairs a only
    """
    f = config.family
    a, b = f.Leaf(value=1), f.Leaf(value=2)
    mid = f.Sum(deps=(a, b))
    top = f.Sum(deps=(mid,))
    assert config.build([top]).n_succeeded == 4
    Path(a.output().path).write_text("{truncated")
    assert config.build([top]).n_previously_complete == 1  # corrupt, yet complete: it exists
    with pytest.raises(TargetError, match="rebuild=") as raised:
        a.load()
    assert a.output().path in str(raised.value) and repr(a) in str(raised.value)

    summary = config.build([top], rebuild=[a])
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert (summary.n_succeeded, summary.n_previously_complete) == (1, 1)  # a; top was complete
    assert a.load() == 1 and top.load() == 3
    runs = collections.Counter(tt.done_ids(root))
    assert runs[a.id] == 2 and runs[b.id] == runs[mid.id] == runs[top.id] == 1

    summary = config.build([top], rebuild=[mid, top])  # both, each after its dependencies
    assert summary.n_succeeded == 2 and summary.status is BuildStatus.SUCCESS
    runs = collections.Counter(tt.done_ids(root))
    assert runs[mid.id] == runs[top.id] == 2 and runs[a.id] == 2 and runs[b.id] == 1
    order = tt.done_ids(root)
    assert order[-2:] == [mid.id, top.id]


# -- registry and concurrency ------------------------------------------------


def test_registry_hears_every_build_and_task_event(config: Config, root: str) -> None:
    f = config.family
    bad = f.Leaf(value=0, fail=True)
    dyn = f.Dynamic(n=1)
    top = f.Sum(deps=(dyn, bad))
    recorder = tt.Recorder()
    summary = config.build([top], FailMode.CONTINUE, registry=recorder)

    kinds = [kind for kind, _ in recorder.events]
    assert kinds[0] == "build_start" and recorder.events[0][1] == [top.task_id]
    assert kinds[-1] == "build_complete" and recorder.events[-1][1] is summary
    started = [v for k, v in recorder.events if k == "task_start"]
    completed = [v for k, v in recorder.events if k == "task_complete"]
    failed = [v for k, v in recorder.events if k == "task_fail"]
    # dyn starts once even though the process pool re-runs it after each yield.
    assert sorted(started) == sorted(set(started))
    assert set(completed) == {dyn.task_id, *[t.task_id for t in dyn.first()],
                              dyn.second().task_id, *[t.task_id for t in dyn.second().deps]}
    assert [task_id for task_id, _ in failed] == [bad.task_id]
    assert isinstance(failed[0][1], ValueError)
    assert set(started) == set(completed) | {bad.task_id}
    for task_id in completed:
        assert kinds.index("task_start", 0) <= recorder.events.index(("task_complete", task_id))
        assert recorder.events.index(("task_start", task_id)) < recorder.events.index(("task_complete", task_id))


def _max_overlap(runs_start: list[tuple], runs_done: list[tuple]) -> int:
    events = [(when, 1) for *_, when in runs_start] + [(when, -1) for *_, when in runs_done]
    current = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        current += step
        peak = max(peak, current)
    return peak


def test_runs_concurrently_up_to_the_worker_limit(config: Config, root: str) -> None:
    f = config.family
    if config.name == "dask":  # Dask's workers set the limit: 2 threads in all
        leaves = [f.Leaf(value=i, sleep=0.2) for i in range(6)]
        assert config.build(leaves).n_succeeded == 6
        assert _max_overlap(tt.read_runs(root, "start"), tt.read_runs(root)) == DASK_WORKERS
    elif config.name in CONCURRENT:
        leaves = [f.Leaf(value=i, sleep=0.2) for i in range(4)]
        started = time.perf_counter()
        summary = config.build(leaves)
        elapsed = time.perf_counter() - started
        assert summary.n_succeeded == 4
        starts, dones = tt.read_runs(root, "start"), tt.read_runs(root)
        assert _max_overlap(starts, dones) == 4
        # 0.8 s one at a time. The process pool's start-up is left out of its figure.
        span = max(r[3] for r in dones) - min(r[3] for r in starts)
        assert span < 0.6 and (config.name == "process" or elapsed < 0.6), (span, elapsed)
        limited = [f.Leaf(value=10 + i, sleep=0.05) for i in range(6)]
        limits = {"max_thread_workers": 2, "max_process_workers": 2, "max_async_workers": 2}
        assert config.build(limited, **limits).n_succeeded == 6
        ids = {t.task_id for t in limited}
        starts = [r for r in tt.read_runs(root, "start") if r[1] in ids]
        dones = [r for r in tt.read_runs(root) if r[1] in ids]
        assert _max_overlap(starts, dones) == 2
    else:
        leaves = [f.Leaf(value=i, sleep=0.01) for i in range(4)]
        assert config.build(leaves).n_succeeded == 4
        assert _max_overlap(tt.read_runs(root, "start"), tt.read_runs(root)) == 1


def test_process_config_runs_sync_tasks_in_other_processes(config: Config, root: str) -> None:
    f = config.family
    leaves = [f.Leaf(value=i) for i in range(4)]
    config.build(leaves)
    pids = {pid for _, _, pid, _ in tt.read_runs(root)}
    if config.name in OTHER_PROCESSES:
        assert os.getpid() not in pids
    else:
        assert pids == {os.getpid()}


# -- outside the parametrised suite -----------------------------------------


def test_sequential_order_is_deterministic(fresh_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from stardag.target import target_root

    def dag():
        leaves = [tt.Leaf(value=i) for i in range(6)]
        mids = [tt.Sum(deps=(leaves[i], leaves[(i + 1) % 6]), value=i) for i in range(6)]
        return tt.Sum(deps=tuple(reversed(mids)))

    orders = []
    for n in range(3):
        path = os.path.join(fresh_dir, str(n))
        os.mkdir(path)
        with target_root(path):
            build_sequential([dag()])
            orders.append(tt.done_ids(path))
    assert orders[0] == orders[1] == orders[2] and len(orders[0]) == 13


@pytest.mark.parametrize("sync_mode", ["thread", "process", "blocking"])
def test_async_and_sync_tasks_mix_in_one_build(sync_mode: str, root: str) -> None:
    """
    ASum ── Sum ── ALeaf
      │      └──── Leaf
      └──── Dynamic ··> leaves, Sum
    """
    inner = tt.Sum(deps=(tt.ALeaf(value=1), tt.Leaf(value=2)))
    top = tt.ASum(deps=(inner, tt.Dynamic(n=2)))
    summary = build([top], task_runner=_runner(sync_mode))
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert summary.n_succeeded == 4 + 1 + 2 + 3
    assert top.output().load() == 3 + (0 + 1 + (-1 - 2))


@pytest.mark.parametrize("sync_mode", ["thread", "process"])
def test_build_aio_drives_thread_and_process_pools(sync_mode: str, root: str) -> None:
    dyn = tt.Dynamic(n=2)
    summary = asyncio.run(build_aio([tt.Sum(deps=(dyn,))], task_runner=_runner(sync_mode)))
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert summary.n_succeeded == 7


def test_build_defaults_to_a_thread_runner(root: str) -> None:
    leaves = [tt.Leaf(value=i) for i in range(3)]
    summary = build(leaves)
    assert summary.n_succeeded == 3
    assert {pid for _, _, pid, _ in tt.read_runs(root)} == {os.getpid()}


def test_empty_build_succeeds(root: str) -> None:
    summary = build([])
    assert summary.status is BuildStatus.SUCCESS
    assert summary.n_discovered == 0
    assert "success" in str(summary)


def test_a_custom_selector_decides_per_task_not_per_class(root: str) -> None:
    """Tasks of one class may go to different executors: the selector sees each task."""
    seen: list[str] = []

    def select(task: Any) -> str:
        seen.append(task.task_id)
        return "process" if task.value % 2 else "blocking"

    leaves = [tt.Leaf(value=i) for i in range(6)]
    summary = build(leaves, task_runner=HybridConcurrentTaskRunner(
        execution_mode_selector=select, max_process_workers=2))
    assert summary.n_succeeded == 6
    pids = {task_id: pid for _, task_id, pid, _ in tt.read_runs(root)}
    for leaf in leaves:
        in_this_process = pids[leaf.task_id] == os.getpid()
        assert in_this_process == (leaf.value % 2 == 0), leaf
    assert set(seen) == {leaf.task_id for leaf in leaves}
