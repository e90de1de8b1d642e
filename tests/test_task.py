"""Tasks: immutable models, requires(), outputs, pickling, and chains 100,000 deep."""

from __future__ import annotations

import os
import pickle
import re
import sys
from typing import Any

import pydantic
import pytest

import tasks_for_tests as tt
from stardag import AutoTask, Task, TaskDefinitionError
from stardag.build import BuildStatus, HybridConcurrentTaskRunner, build, build_sequential
from stardag.task import flatten_tasks


class Collect(AutoTask[list]):
    """Task-valued parameters of every supported shape."""

    one: Task | None = None
    many: tuple[Task, ...] = ()
    listed: list[Task] = []
    named: dict[str, Task] = {}

    def requires(self) -> Any:
        return {"one": self.one, "rest": [self.many, self.listed], "named": self.named}

    def run(self) -> None:
        self.output().save(sorted(t.load() for t in flatten_tasks(self.requires())))


class NoOutput(Task):
    def run(self) -> None:
        tt.log_run(self)


def test_tasks_are_frozen_hashable_and_compared_by_id() -> None:
    leaf = tt.Leaf(value=1)
    with pytest.raises(pydantic.ValidationError):
        leaf.value = 2
    assert tt.Leaf(value=1) == leaf and tt.Leaf(value=2) != leaf
    assert tt.ALeaf(value=1) != leaf  # same fields, another class
    assert {leaf: "x"}[tt.Leaf(value=1)] == "x"
    assert leaf != "not a task"


def test_requires_defaults_to_nothing_and_flattens_nested_collections() -> None:
    a, b, c, d = (tt.Leaf(value=i) for i in range(4))
    assert flatten_tasks(tt.Leaf().requires()) == []
    assert flatten_tasks(None) == []
    assert flatten_tasks(a) == [a]
    assert flatten_tasks({"x": [a, (b, {"y": c})], "z": d}) == [a, b, c, d]
    assert flatten_tasks([a, None, (b,)]) == [a, b]
    with pytest.raises(TypeError, match="int: 3"):
        flatten_tasks([a, 3])


def test_task_parameters_may_be_tasks_or_collections_of_tasks(memory_root: str) -> None:
    leaves = [tt.Leaf(value=i) for i in range(5)]
    task = Collect(one=leaves[0], many=(leaves[1],), listed=[leaves[2]], named={"k": leaves[3], "j": leaves[4]})
    assert isinstance(task.listed, list) and task.named["j"] is leaves[4]
    summary = build_sequential([task])
    assert summary.n_succeeded == 6
    assert task.load() == [0, 1, 2, 3, 4]
    # A changed task inside a collection changes the id.
    assert Collect(named={"k": leaves[0]}).task_id != Collect(named={"k": leaves[1]}).task_id


def test_requires_errors_name_the_task(memory_root: str) -> None:
    class Broken(AutoTask[int]):
        def requires(self) -> Any:
            raise KeyError("missing config")

        def run(self) -> None:
            pass

    class Odd(AutoTask[int]):
        def requires(self) -> Any:
            return [tt.Leaf(), "not a task"]

        def run(self) -> None:
            pass

    # The task fails (in the summary, not raised: the rest of a build may go on).
    [failure] = build_sequential([Broken()]).failures
    assert isinstance(failure.error, TaskDefinitionError)
    assert re.search(r"requires\(\) of task Broken\(\) failed.*missing config", str(failure.error))
    [failure] = build_sequential([Odd()]).failures
    assert isinstance(failure.error, TaskDefinitionError)
    assert re.search(r"Odd\(\).*'not a task'", str(failure.error))


def test_a_task_without_output_is_never_complete_and_runs_every_build(root: str) -> None:
    task = NoOutput()
    assert task.output() is None and not task.complete()
    build_sequential([task])
    build_sequential([task])
    assert len(tt.read_runs(root)) == 2


def test_default_run_and_run_aio_raise_not_implemented() -> None:
    import asyncio

    with pytest.raises(NotImplementedError):
        Task().run()
    with pytest.raises(NotImplementedError):
        asyncio.run(Task().run_aio())


def test_output_path_comes_from_namespace_name_and_id(root: str) -> None:
    leaf = tt.Leaf(value=5)
    assert leaf.output().path == os.path.join(root, "default", "Leaf", leaf.task_id[:2], leaf.task_id + ".json")
    golden = tt.Golden()
    assert golden.output().path == os.path.join(root, "golden", "Golden", golden.task_id[:2], golden.task_id + ".json")
    assert not leaf.complete()
    leaf.output().save(5)
    assert leaf.complete() and leaf.load() == 5 and leaf.output().load() == 5


def test_repr_is_short_and_names_the_class_and_parameters() -> None:
    assert repr(tt.Leaf(value=3)) == "Leaf(value=3, fail=False, sleep=0.0)"
    top = tt.Sum(deps=(tt.Leaf(),) * 3, value=2)
    assert repr(top) == "Sum(deps=[3 tasks], value=2, fail=False, sleep=0.0)"
    assert str(top) == repr(top)
    long = tt.Golden(text="x" * 1000)
    assert len(repr(long)) <= 200 and repr(long).startswith("Golden(")


def test_pickling_keeps_ids_parameters_and_shared_subtasks(root: str) -> None:
    shared = tt.Leaf(value=1)
    task = Collect(one=shared, many=(shared, tt.Leaf(value=2)), named={"s": shared})
    clone = pickle.loads(pickle.dumps(task))
    assert clone == task and clone.task_id == task.task_id
    assert clone.model_dump() == task.model_dump()
    assert clone.one is clone.many[0] is clone.named["s"]
    assert clone.output().path == task.output().path


# -- a chain 100,000 deep ----------------------------------------------------

DEPTH = 100_000


@pytest.fixture(scope="module")
def deep_chain() -> tt.Chain:
    return tt.chain(DEPTH)


def test_a_deep_chain_constructs_and_hashes(deep_chain: tt.Chain) -> None:
    assert deep_chain.i == DEPTH - 1
    assert len(deep_chain.task_id) == 32
    assert hash(deep_chain) == hash(deep_chain.task_id)
    assert deep_chain == deep_chain.model_copy()
    assert deep_chain.prev is not None and deep_chain.prev.i == DEPTH - 2
    assert "Chain(prev=<Chain " in repr(deep_chain)
    assert sys.getrecursionlimit() < DEPTH  # so the checks above prove there is no recursion


def test_a_deep_chain_pickles(deep_chain: tt.Chain) -> None:
    clone = pickle.loads(pickle.dumps(deep_chain, protocol=pickle.HIGHEST_PROTOCOL))
    assert clone.task_id == deep_chain.task_id
    link, n = clone, 0
    while link is not None:
        n += 1
        link = link.prev
    assert n == DEPTH


@pytest.mark.parametrize("how", ["sequential", "thread"])
def test_a_deep_chain_builds(how: str, deep_chain: tt.Chain, memory_root: str) -> None:
    if how == "sequential":
        summary = build_sequential([deep_chain])
    else:
        summary = build([deep_chain], task_runner=HybridConcurrentTaskRunner(max_thread_workers=2))
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert summary.n_discovered == summary.n_succeeded == DEPTH
    assert deep_chain.load() == DEPTH - 1


def test_a_long_chain_builds_on_the_process_pool(root: str) -> None:
    """Each task reaches its worker with the links below it: no recursion, nothing lost."""
    from stardag.build import DefaultExecutionModeSelector

    top = tt.chain(10_000)
    runner = HybridConcurrentTaskRunner(
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="process"), max_process_workers=2)
    summary = build([top], task_runner=runner)
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert summary.n_succeeded == 10_000 and top.load() == 9_999
