"""The task API of upstream stardag: auto_namespace, SubClass, TaskStruct, task.id and a task_id label."""

from __future__ import annotations

import asyncio
import importlib.util
import pickle
import subprocess
import sys
import typing
from typing import Any

import pytest
from pydantic import BaseModel

import identity_tasks as it
import stardag
import upstream_tasks as up
from conftest import subprocess_env
from stardag import AutoTask, Task
from stardag.build import (
    BuildStatus,
    DefaultExecutionModeSelector,
    HybridConcurrentTaskRunner,
    build,
    build_aio,
    build_sequential,
)
from stardag.registry import RegistryABC
from stardag.task import dumps_for, flatten_tasks, loads_into

HAS_DASK = importlib.util.find_spec("distributed") is not None


def test_the_module_imports_without_a_warning() -> None:
    result = subprocess.run([sys.executable, "-W", "error", "-c", "import upstream_tasks; upstream_tasks.dag()"],
                            env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_auto_namespace_gives_the_module_name() -> None:
    assert up.Leaf.task_namespace == up.Combine.task_namespace == "upstream_tasks"
    assert it.A.task_namespace == ""  # a module without the call keeps the default


def test_a_task_id_field_is_a_label_and_id_is_the_id(root: str) -> None:
    leaf = up.Leaf(task_id="first", value=1)
    assert leaf.task_id == "first"
    assert len(leaf.id) == 32 and leaf.id != "first"
    assert up.Leaf(task_id="other", value=1).id != leaf.id  # a label is a parameter like any other
    assert repr(leaf) == "Leaf(task_id='first', value=1, fail=False)"
    assert leaf.id in leaf.output().path and "first" not in leaf.output().path
    clone = pickle.loads(pickle.dumps(leaf))
    assert (clone.task_id, clone.id) == ("first", leaf.id)
    known: set[str] = set()
    moved = loads_into(dumps_for(up.dag(), known), {})  # as the process pool sends tasks
    assert moved.id == up.dag().id and moved.task_id == "root" and moved.deps[0].task_id == "inner"
    # Without such a field, task_id is the id, as before.
    assert it.A().task_id == it.A().id


def test_subclass_keeps_the_concrete_class_and_its_fields() -> None:
    root = up.dag()
    inner, expand = root.deps
    assert type(inner) is up.Combine and type(expand) is up.Expand
    assert type(inner.deps[1]) is up.AsyncLeaf
    dumped = root.model_dump()
    assert dumped["deps"][1] == {"task_id": "expand", "n": 3}  # serialised as the subclass
    assert up.Combine(task_id="r", deps=(up.Leaf(task_id="a"),)).id != up.Combine(
        task_id="r", deps=(up.AsyncLeaf(task_id="a"),)).id

    class Keeps(AutoTask[int]):
        part: stardag.SubClass[it.Base]
        parts: list[stardag.SubClass[it.Base]] = []

    held = Keeps(part=it.Sub(extra="x"), parts=[it.Sub()])
    assert type(held.part) is it.Sub and held.part.extra == "x" and type(held.parts[0]) is it.Sub
    assert held.model_dump()["part"] == {"size": 1, "extra": "x"}
    assert held.id != Keeps(part=it.Sub(extra="y"), parts=[it.Sub()]).id
    assert type(Keeps(part={"size": 3}).part) is it.Base  # plain data validates as the declared class
    with pytest.raises(Exception, match="part"):
        Keeps(part="not a model")


def test_task_struct_describes_what_requires_returns() -> None:
    hints = typing.get_type_hints(up.Combine.requires)  # resolves from a module that never names TaskStruct
    assert typing.get_origin(hints["return"]) is typing.Union and Task in typing.get_args(hints["return"])
    root = up.dag()
    assert [t.task_id for t in flatten_tasks(root.requires())] == ["inner", "expand", "first"]


class Events(RegistryABC):
    """Records (event, id, label) from the build's thread."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def build_start(self, root_tasks: list[Task]) -> None:
        pass

    def build_complete(self, summary: Any) -> None:
        pass

    def task_start(self, task: Task) -> None:
        self.events.append(("start", task.id, task.task_id))

    def task_complete(self, task: Task) -> None:
        self.events.append(("complete", task.id, task.task_id))

    def task_fail(self, task: Task, error: Any) -> None:
        self.events.append(("fail", task.id, task.task_id))


CONFIGS = ["sequential", "thread", "process", "async"] + ["dask"] * HAS_DASK


def _build(config: str, tasks: list[Task], registry: RegistryABC, request: pytest.FixtureRequest) -> Any:
    if config == "sequential":
        return build_sequential(tasks, registry=registry)
    mode = "thread" if config == "async" else config
    kwargs: dict[str, Any] = {}
    if config == "dask":
        kwargs["dask_address"] = request.getfixturevalue("dask_cluster")
    runner = HybridConcurrentTaskRunner(registry=registry, max_process_workers=2, max_thread_workers=2,
                                        execution_mode_selector=DefaultExecutionModeSelector(mode), **kwargs)
    if config == "async":
        return asyncio.run(build_aio(tasks, task_runner=runner))
    return build(tasks, task_runner=runner)


@pytest.mark.parametrize("config", CONFIGS)
def test_an_upstream_style_module_builds_with_labels(config: str, root: str, request: pytest.FixtureRequest) -> None:
    dag, registry = up.dag(), Events()
    summary = _build(config, [dag], registry, request)
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert summary.n_succeeded == 8  # root, inner, first, second, expand and its 3 leaves
    assert dag.load() == up.expected()
    labels = {label: task_id for kind, task_id, label in registry.events if kind == "complete"}
    assert labels["root"] == dag.id and labels["expand-leaf-2"] == up.Leaf(task_id="expand-leaf-2", value=2).id
    assert len(labels) == 8

    broken = up.dag(async_leaf=False, fail=True)
    events = Events()
    failed = _build(config, [broken], events, request)
    assert failed.status is BuildStatus.FAILURE
    failing = broken.deps[0].deps[0]
    assert failed.failures[0].task_id == failing.id  # the id, not the label "first"
    assert "first" in failed.failures[0].task and "fails on purpose" in str(failed.failures[0].error)
    assert ("fail", failing.id, "first") in events.events


def test_a_task_id_field_needs_no_special_care_in_a_subclass() -> None:
    class Labelled(up.Leaf):
        extra: int = 0

    task = Labelled(task_id="label", extra=1)
    assert task.task_id == "label" and task.id != up.Leaf(task_id="label").id

    class Model(BaseModel):  # a plain model may use the name freely
        task_id: str = "x"

    assert Model().task_id == "x"
