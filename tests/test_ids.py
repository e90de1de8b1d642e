"""Task ids: deterministic across runs, processes, hash seeds and Python versions; any change shows."""

from __future__ import annotations

import functools
import glob
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

import tasks_for_tests as tt
from conftest import REPO_DIR, subprocess_env
from stardag import AutoTask, Task
from stardag._ids import canonical_params, make_task_id

# Hard-coded on purpose: if one of these changes, every stored output is orphaned.
# Change them only with a deliberate, documented change of the id scheme.
GOLDEN_TASK_ID = "5f4a3251177d20afece0257c8dabb940"  # tt.golden_task()
GOLDEN_DEFAULT_ID = "de625ea144ab987e272e7d7d10d96157"  # tt.Golden()
GOLDEN_RAW_ID = "3e709243fbb3dacd1b630d8faa0815dd"  # make_task_id on RAW_PARAMS

RAW_PARAMS: dict[str, Any] = {
    "i": 7, "big": 2**70, "neg": -1, "f": 0.1, "tiny": 1e-300, "huge": 1.5e300, "whole": 2.0,
    "nan": float("nan"), "inf": float("-inf"), "s": "ünï©ødé ✓ \n\t\"q\"", "b": False, "none": None,
    "list": [1, [2, [3]]], "tuple": (1, 2), "dict": {"z": 1, "a": {"y": [None]}, "1": 2},
    "set": frozenset({"pear", "apple", "fig", "kiwi", "plum"}),
}

_ID_SCRIPT = """
import json, sys
import tasks_for_tests as tt
print(json.dumps({"version": sys.version.split()[0], "golden": tt.golden_task().task_id,
                  "default": tt.Golden().task_id}))
"""

# Loads stardag/_ids.py alone, so it runs on interpreters without pydantic installed.
_RAW_SCRIPT = """
import importlib.util, json, sys, types
stub = types.ModuleType("pydantic_core")
def to_jsonable_python(value):
    raise TypeError(f"unexpected {value!r}")
stub.to_jsonable_python = to_jsonable_python
sys.modules["pydantic_core"] = stub
spec = importlib.util.spec_from_file_location("ids", sys.argv[1])
ids = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ids)
class NoTask: pass
params = %s
print(json.dumps({"version": sys.version.split()[0],
                  "id": ids.make_task_id("ns", "Name", "2", ids.canonical_params(params, NoTask))}))
"""


def _raw_params_source() -> str:
    return ("{'i': 7, 'big': 2**70, 'neg': -1, 'f': 0.1, 'tiny': 1e-300, 'huge': 1.5e300, 'whole': 2.0, "
            "'nan': float('nan'), 'inf': float('-inf'), 's': 'ünï©ødé ✓ \\n\\t\"q\"', 'b': False, 'none': None, "
            "'list': [1, [2, [3]]], 'tuple': (1, 2), 'dict': {'z': 1, 'a': {'y': [None]}, '1': 2}, "
            "'set': frozenset({'pear', 'apple', 'fig', 'kiwi', 'plum'})}")


def raw_id() -> str:
    return make_task_id("ns", "Name", "2", canonical_params(RAW_PARAMS, Task))


@functools.cache  # two tests use it; each probe starts an interpreter
def discover_interpreters() -> list[str]:
    """Python 3.10-3.13 interpreters on this machine (pyenv versions and PATH), this one included."""
    candidates = [sys.executable]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.1[0-3]*", "bin", "python3")))
    candidates += [p for v in ("3.10", "3.11", "3.12", "3.13") if (p := shutil.which(f"python{v}"))]
    seen, found = set(), []
    for path in candidates:
        try:  # a pyenv shim may exist and still not resolve
            probe = subprocess.run([path, "-c", "import sys; print(sys.executable)"],
                                   capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        real = os.path.realpath(probe.stdout.strip())
        if probe.returncode == 0 and real not in seen:
            seen.add(real)
            found.append(real)
    return found


def _run(python: str, code: str, *args: str, **env: str) -> dict:
    result = subprocess.run([python, "-c", code, *args], env=subprocess_env(**env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_golden_ids_are_unchanged() -> None:
    assert tt.golden_task().task_id == GOLDEN_TASK_ID
    assert tt.Golden().task_id == GOLDEN_DEFAULT_ID
    assert raw_id() == GOLDEN_RAW_ID


@pytest.mark.parametrize("seed", ["0", "1", "4242"])
def test_ids_are_the_same_in_other_processes_whatever_the_hash_seed(seed: str) -> None:
    # Set and frozenset order depends on PYTHONHASHSEED: the canonical form must not.
    out = _run(sys.executable, _ID_SCRIPT, PYTHONHASHSEED=seed)
    assert (out["golden"], out["default"]) == (GOLDEN_TASK_ID, GOLDEN_DEFAULT_ID)


def test_canonical_hashing_is_the_same_on_every_python_found() -> None:
    """json + sha256 of the canonical parameters, on each 3.10-3.13 interpreter (pydantic stubbed)."""
    ids_file = str(REPO_DIR / "stardag" / "_ids.py")
    versions = {}
    for python in discover_interpreters():
        out = _run(python, _RAW_SCRIPT % _raw_params_source(), ids_file, PYTHONHASHSEED="random")
        versions[out["version"]] = out["id"]
    assert versions and set(versions.values()) == {GOLDEN_RAW_ID}, versions


def test_task_ids_are_the_same_on_every_python_with_pydantic() -> None:
    """The whole stack, on each interpreter found that has pydantic (at least this one)."""
    checked = []
    for python in discover_interpreters():
        probe = subprocess.run([python, "-c", "import pydantic"], capture_output=True, timeout=60)
        if probe.returncode != 0:
            continue
        out = _run(python, _ID_SCRIPT)
        assert (out["golden"], out["default"]) == (GOLDEN_TASK_ID, GOLDEN_DEFAULT_ID), out["version"]
        checked.append(out["version"])
    assert sys.version.split()[0] in checked


def test_raw_params_source_matches_raw_params() -> None:
    ns: dict[str, Any] = {}
    exec(f"p = {_raw_params_source()}", ns)
    assert json.dumps(canonical_params(ns["p"], Task), sort_keys=True) == json.dumps(
        canonical_params(RAW_PARAMS, Task), sort_keys=True)


# -- what goes into an id ----------------------------------------------------


def test_equal_parameters_give_equal_ids_and_equal_tasks() -> None:
    a, b = tt.Leaf(value=3), tt.Leaf(value=3)
    assert a is not b
    assert a.task_id == b.task_id and a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    assert len(a.task_id) == 32 and int(a.task_id, 16) >= 0
    # An explicit default is the same task as the implicit one.
    assert tt.Leaf(value=3, fail=False).task_id == a.task_id
    # dict order does not matter, list order does.
    assert tt.Golden(mapping={"a": 1, "b": 2}) == tt.Golden(mapping={"b": 2, "a": 1})
    assert tt.Golden(numbers=[1, 2, 3]) != tt.Golden(numbers=[3, 2, 1])


@pytest.mark.parametrize(("field", "value"), [
    ("count", 4), ("count", -3), ("ratio", 0.1000001), ("ratio", 1e-300), ("text", "hello ✓"),
    ("text", ""), ("flag", False), ("numbers", [3, 1]), ("numbers", [3, 1, 2, 0]),
    ("mapping", {"b": 2, "a": 2}), ("mapping", {"b": 2, "A": 1}), ("tags", frozenset({"x"})),
    ("point", tt.Point(x=1, y=2.5, label="q")), ("point", tt.Point(x=1, y=2.25, label="p")),
    ("dep", tt.Leaf(value=1)), ("deps", (tt.Leaf(),)), ("named", {"one": tt.Leaf()}),
])
def test_any_parameter_change_gives_a_new_id(field: str, value: Any) -> None:
    base = tt.Golden()
    assert base.model_copy(update={}).task_id == base.task_id
    assert tt.Golden(**{field: value}).task_id != base.task_id


def test_a_change_deep_in_a_dependency_changes_every_id_above() -> None:
    def build(bottom: int) -> list[Task]:
        tasks: list[Task] = [tt.Leaf(value=bottom)]
        for i in range(5):
            tasks.append(tt.Sum(deps=(tasks[-1],), value=i))
        return tasks

    one, two = build(1), build(2)
    assert all(a.task_id != b.task_id for a, b in zip(one, two))


def test_namespace_version_and_class_name_are_part_of_the_id() -> None:
    class Plain(AutoTask[int]):
        x: int = 1

    class Twin(AutoTask[int]):
        x: int = 1

    class Spaced(AutoTask[int]):
        task_namespace: ClassVar[str] = "space"
        x: int = 1

    class Versioned(AutoTask[int]):
        task_version: ClassVar[str] = "2"
        x: int = 1

    ids = {Plain().task_id, Twin().task_id}
    assert len(ids) == 2
    assert make_task_id("", "Plain", "", {"x": 1}) == Plain().task_id
    assert make_task_id("space", "Spaced", "", {"x": 1}) == Spaced().task_id
    assert make_task_id("", "Versioned", "2", {"x": 1}) == Versioned().task_id
    assert make_task_id("space", "Plain", "", {"x": 1}) != Plain().task_id
    assert make_task_id("", "Plain", "2", {"x": 1}) != Plain().task_id


def test_a_task_parameter_contributes_its_id_not_its_tree() -> None:
    deep = tt.chain(50)
    params = canonical_params(tt.Sum(deps=(deep,), value=1).__dict__, Task)
    assert params["deps"] == [{"__stardag_task_id__": deep.task_id}]
    assert len(json.dumps(params)) < 200


def test_ids_survive_pickling_and_the_process_boundary() -> None:
    task = tt.golden_task()
    clone = pickle.loads(pickle.dumps(task))
    assert clone == task and clone.task_id == task.task_id
    assert clone.named["one"] is clone.dep  # shared sub-tasks stay shared
    # Recomputed from scratch, not just carried over.
    assert type(clone)(**clone.__dict__).task_id == task.task_id


def test_model_copy_with_changed_parameters_gets_the_new_id(root: str) -> None:
    leaf = tt.Leaf(value=1)
    leaf.output()  # caches the target of value=1
    changed = leaf.model_copy(update={"value": 2})
    assert changed.value == 2
    assert changed.task_id == tt.Leaf(value=2).task_id != leaf.task_id
    assert changed.output().path == tt.Leaf(value=2).output().path != leaf.output().path
    assert leaf.model_copy().task_id == leaf.task_id
    assert leaf.model_copy(deep=True) == leaf
    with pytest.raises(Exception, match="value"):  # updates are validated like parameters
        leaf.model_copy(update={"value": "not a number"})
