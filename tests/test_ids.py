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
from typing import Any, ClassVar

import pytest
from pydantic import Field

import identity_tasks as it
import tasks_for_tests as tt
from conftest import REPO_DIR, subprocess_env
from stardag import AutoTask, Task
from stardag._ids import canonical_params, make_task_id

# Hard-coded on purpose: if one of these changes, every stored output is orphaned.
# Change them only with a deliberate, documented change of the id scheme.
# Golden holds a pydantic model (Point): its id changed when models began to
# count with their class (was 5f4a3251177d20afece0257c8dabb940 / de625ea144ab987e272e7d7d10d96157).
GOLDEN_TASK_ID = "c47a26f4c052f523d191ca964b846e0f"  # tt.golden_task()
GOLDEN_DEFAULT_ID = "4107ce920dd34bbcccf82af50d98f714"  # tt.Golden()

# Computed by the id scheme before types were kept (commit 1398ddc): these simple
# cases (ints, strs, floats, bools, None, lists, str-keyed dicts, tuples and sets
# where the declared type fixes them, tasks) keep their ids.
STABLE_IDS = {
    "A(x=7)": "b662fd4587f337f78ccccee6e6e35e5f",
    "Typed()": "0d0c8414be244859aef3db8155cb6648",
    "Typed(...)": "1839c5e86aece147e24102645c962c64",
    "Typed(f=nan)": "88e0bc3d1209812b6f10f909bf3139ac",
    "Typed(f=-inf)": "d4b1395174bb76f39a8b52f0592506f5",
    "Deps(...)": "5d810b575f1c7a541fec5fb8327cfd6c",
    "Value(v=None)": "aa7c45594b8765ea92dedd35ae654aad",
    "Value(v=[1, 'a', None, 2.5, True])": "506cc9a6edb9bc95be770c2b9eedf9a9",
    "Value(v={'k': [1, {'n': None}]})": "33918312879fa3395167b293b7df9f83",
    "Value(v=A())": "7e6b5b368835ad1138451002ab2dec83",
    "Value(v=2**70)": "14cd8d26c937b5db9c9c0d9f02ffdbbe",
}

# The encoding alone (stardag/_frozen.py and _ids.py, no pydantic) of values of
# every type it knows without pydantic.
# Was e2f2b3a0b1f8300f7d2d3f1462009b6f while -0.0 counted as 0.0 and decimals lost their
# scale: equal values that print differently now keep apart (negzero, complex, dec below);
# then 017cc6b60c9529b67a747ec67e6091f9, before IP addresses were supported (ip, net, iface, ip4).
RAW_ID = "ec8ec87fb01d38107f438b243a57e9be"
_RAW_PARAMS = """{
    "i": 7, "big": 2**70, "neg": -1, "f": 0.1, "tiny": 1e-300, "huge": 1.5e300, "whole": 2.0, "negzero": -0.0,
    "nan": float("nan"), "inf": float("-inf"), "s": "ünï©ødé ✓ \\n\\t\\"q\\"", "b": False, "none": None,
    "list": [1, [2, [3]]], "tuple": (1, 2), "dict": {"z": 1, "a": {"y": [None]}, "1": 2}, "intkeys": {1: "a", 2: "b"},
    "set": frozenset({"pear", "apple", "fig", "kiwi", "plum"}), "bytes": b"\\x00\\xff",
    "enum": Color.RED, "intenum": Size.BIG, "path": pathlib.PurePosixPath("a/b"), "date": datetime.date(2024, 2, 29),
    "dt": datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
    "td": datetime.timedelta(days=-1, microseconds=3), "uuid": uuid.UUID(int=2**100), "dec": decimal.Decimal("-12.3400"),
    "complex": complex(0.5, -0.0), "cls": Color, "ip": ipaddress.ip_address("::ffff:192.168.1.1"),
    "net": ipaddress.ip_network("::ffff:192.168.1.0/120"), "iface": ipaddress.ip_interface("fe80::1%eth0/64"),
    "ip4": ipaddress.ip_address("10.0.0.1"),
}"""

_RAW_SCRIPT = """
import datetime, decimal, enum, importlib, ipaddress, json, os, pathlib, shutil, sys, tempfile, uuid
package = os.path.join(tempfile.mkdtemp(), "idsalone")
os.mkdir(package)
open(os.path.join(package, "__init__.py"), "w").close()
for name in ("_frozen.py", "_ids.py"):
    shutil.copy(os.path.join(sys.argv[1], name), package)
sys.path.insert(0, os.path.dirname(package))
ids = importlib.import_module("idsalone._ids")
assert "pydantic" not in sys.modules
class Color(enum.Enum):
    RED = "red"
Color.__module__ = "colors"
class Size(enum.IntEnum):
    BIG = 2
Size.__module__ = "colors"
params = %s
print(json.dumps({"version": sys.version.split()[0],
                  "id": ids.make_task_id("ns", "Name", "2", ids.canonical_params(params))}))
"""

_ID_SCRIPT = """
import json, pickle, sys
import identity_tasks as it, tasks_for_tests as tt
values = pickle.loads(bytes.fromhex(sys.stdin.read()))
print(json.dumps({"version": sys.version.split()[0], "golden": tt.golden_task().id, "default": tt.Golden().id,
                  "stable": {k: t.id for k, t in it.stable_cases().items()},
                  "values": [it.Value(v=v).id for v in values]}))
"""


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
            found.append(path)  # not ``real``: a virtualenv's python shares its base's binary, not its packages
    return found


def _run(python: str, code: str, *args: str, stdin: str = "", **env: str) -> dict:
    result = subprocess.run([python, "-c", code, *args], env=subprocess_env(**env), input=stdin,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _here(values: list[Any]) -> dict:
    return {"golden": tt.golden_task().id, "default": tt.Golden().id,
            "stable": {k: t.id for k, t in it.stable_cases().items()}, "values": [it.Value(v=v).id for v in values]}


def test_golden_ids_are_unchanged() -> None:
    assert tt.golden_task().id == GOLDEN_TASK_ID
    assert tt.Golden().id == GOLDEN_DEFAULT_ID


def test_simple_cases_keep_the_ids_they_had_before_types_were_kept() -> None:
    assert {k: t.id for k, t in it.stable_cases().items()} == STABLE_IDS


@pytest.mark.parametrize("seed", ["0", "1", "4242", "random"])
def test_ids_are_the_same_in_other_processes_whatever_the_hash_seed(seed: str) -> None:
    # Set and frozenset order depends on PYTHONHASHSEED: the canonical form must not.
    values = it.corpus()
    out = _run(sys.executable, _ID_SCRIPT, stdin=pickle.dumps(values).hex(), PYTHONHASHSEED=seed)
    assert {k: out[k] for k in ("golden", "default", "stable", "values")} == _here(values)
    assert out["golden"] == GOLDEN_TASK_ID


def test_the_encoding_is_the_same_on_every_python_found() -> None:
    """json + sha256 of the canonical parameters, on each 3.10-3.13 interpreter (no pydantic needed)."""
    versions = {}
    for python in discover_interpreters():
        out = _run(python, _RAW_SCRIPT % _RAW_PARAMS, str(REPO_DIR / "stardag"), PYTHONHASHSEED="random")
        versions[out["version"]] = out["id"]
    assert sys.version.split()[0] in versions
    assert set(versions.values()) == {RAW_ID}, versions


def test_task_ids_are_the_same_on_every_python_with_pydantic() -> None:
    """The whole stack, on each interpreter found that has pydantic (at least this one)."""
    values = it.corpus()
    checked = []
    for python in discover_interpreters():
        probe = subprocess.run([python, "-c", "import pydantic"], capture_output=True, timeout=60)
        if probe.returncode != 0:
            continue
        out = _run(python, _ID_SCRIPT, stdin=pickle.dumps(values, protocol=4).hex())
        assert {k: out[k] for k in ("golden", "default", "stable", "values")} == _here(values), out["version"]
        checked.append(out["version"])
    assert sys.version.split()[0] in checked


# -- what goes into an id ----------------------------------------------------


def test_equal_parameters_give_equal_ids_and_equal_tasks() -> None:
    a, b = tt.Leaf(value=3), tt.Leaf(value=3)
    assert a is not b
    assert a.id == b.id and a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    assert len(a.id) == 32 and int(a.id, 16) >= 0
    # An explicit default is the same task as the implicit one.
    assert tt.Leaf(value=3, fail=False).id == a.id
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
    assert base.model_copy(update={}).id == base.id
    assert tt.Golden(**{field: value}).id != base.id


def test_a_change_deep_in_a_dependency_changes_every_id_above() -> None:
    def build(bottom: int) -> list[Task]:
        tasks: list[Task] = [tt.Leaf(value=bottom)]
        for i in range(5):
            tasks.append(tt.Sum(deps=(tasks[-1],), value=i))
        return tasks

    one, two = build(1), build(2)
    assert all(a.id != b.id for a, b in zip(one, two))


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

    ids = {Plain().id, Twin().id}
    assert len(ids) == 2
    # The qualified name: test_...<locals>.Plain here; a module's own classes have their plain name.
    assert make_task_id("", Plain.__qualname__, "", {"x": 1}) == Plain().id
    assert make_task_id("space", Spaced.__qualname__, "", {"x": 1}) == Spaced().id
    assert make_task_id("", Versioned.__qualname__, "2", {"x": 1}) == Versioned().id
    assert make_task_id("space", Plain.__qualname__, "", {"x": 1}) != Plain().id
    assert make_task_id("", Plain.__qualname__, "2", {"x": 1}) != Plain().id
    assert make_task_id("", "A", "", {"x": 7}) == it.A(x=7).id


def test_a_task_parameter_contributes_its_id_not_its_tree() -> None:
    deep = tt.chain(50)
    params = canonical_params(tt.Sum(deps=(deep,), value=1).__dict__, tt.Sum.__stardag_encoders__)
    assert params["deps"] == [{"__stardag_task_id__": deep.id}]
    assert len(json.dumps(params)) < 200
    # The same inside a model, a set and a dict.
    inside = canonical_params({"v": [it.Value(v=deep).__dict__["v"], it.Holder.model_construct(part=deep),
                                     frozenset({deep}), {"k": deep}]})
    assert json.dumps(inside).count(deep.id) == 4 and len(json.dumps(inside)) < 400


def test_ids_survive_pickling_and_the_process_boundary() -> None:
    task = tt.golden_task()
    clone = pickle.loads(pickle.dumps(task))
    assert clone == task and clone.id == task.id
    assert clone.named["one"] is clone.dep  # shared sub-tasks stay shared
    # Recomputed from scratch, not just carried over.
    assert type(clone)(**clone.__dict__).id == task.id


def test_model_copy_with_changed_parameters_gets_the_new_id(root: str) -> None:
    leaf = tt.Leaf(value=1)
    leaf.output()  # caches the target of value=1
    changed = leaf.model_copy(update={"value": 2})
    assert changed.value == 2
    assert changed.id == tt.Leaf(value=2).id != leaf.id
    assert changed.output().path == tt.Leaf(value=2).output().path != leaf.output().path
    assert leaf.model_copy().id == leaf.id
    assert leaf.model_copy(deep=True) == leaf
    with pytest.raises(Exception, match="value"):  # updates are validated like parameters
        leaf.model_copy(update={"value": "not a number"})


def test_model_copy_with_changed_parameters_of_a_task_with_aliased_fields() -> None:
    class Aliased(AutoTask[int]):
        x: int = Field(default=0, alias="X")

    task = Aliased(X=1)
    changed = task.model_copy(update={"x": 2})
    assert changed.x == 2 and changed.id == Aliased(X=2).id != task.id
