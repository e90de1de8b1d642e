"""A task's id is its computation: the adversarial cases (same id for different work), immutability, class identity, safe names."""

from __future__ import annotations

import datetime
import decimal
import importlib.util
import ipaddress
import pathlib
import pickle
import re
import sys
import types
import uuid
import warnings
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

import identity_tasks as it
import tasks_for_tests as tt
import stardag
from stardag import AutoTask, Task, TaskDefinitionError
from stardag.build import BuildStatus, build_sequential
from stardag.task import check_unchanged


def differ(a: Any, b: Any) -> bool:
    return it.Value(v=a).id != it.Value(v=b).id


# -- different work, different ids: the adversarial cases --------------------


def test_a_task_inside_a_model_parameter_counts(memory_root: str) -> None:
    one, two = it.Use(cfg=it.Cfg(dep=it.A(x=1))), it.Use(cfg=it.Cfg(dep=it.A(x=2)))
    assert one.id != two.id
    assert build_sequential([one]).status is BuildStatus.SUCCESS
    assert not two.complete()  # not served the other's output
    assert build_sequential([two]).n_succeeded == 2
    assert (one.load(), two.load()) == ({"x": 1}, {"x": 2})


def test_an_enum_is_not_its_value() -> None:
    assert differ(it.Mode.FAST, "fast")


def test_a_path_is_not_its_string() -> None:
    assert differ(pathlib.Path("data"), "data")
    assert differ(pathlib.PurePosixPath("data"), pathlib.Path("data"))


def test_models_of_different_classes_in_a_union_differ(memory_root: str) -> None:
    sgd, adam = it.Train(optimizer=it.SGD(lr=0.1)), it.Train(optimizer=it.Adam(lr=0.1))
    assert sgd.id != adam.id
    build_sequential([sgd, adam])
    assert (sgd.load(), adam.load()) == ("SGD", "Adam")


def test_dict_keys_keep_their_type() -> None:
    assert differ({1: "a"}, {"1": "a"})
    assert differ({1: "a"}, {True: "a"})
    assert differ({it.Mode.FAST: 1}, {"fast": 1})


def test_bytes_are_not_str() -> None:
    assert differ(b"abc", "abc")
    assert differ(b"abc", b"abc".hex())


def test_a_datetime_is_not_its_iso_string() -> None:
    when = datetime.datetime(2024, 5, 1, 12, 30)
    assert differ(when, when.isoformat())
    assert differ(datetime.date(2024, 5, 1), "2024-05-01")
    assert differ(datetime.date(2024, 5, 1), datetime.datetime(2024, 5, 1))


def test_two_enums_with_equal_values_differ() -> None:
    assert it.Mode.FAST.value == it.Speed.FAST.value
    assert differ(it.Mode.FAST, it.Speed.FAST)
    assert differ(it.Level.HIGH, 2)


def test_fields_a_subclass_adds_inside_a_nested_model_count() -> None:
    plain, sub = it.WithModel(holder=it.Holder(part=it.Base())), it.WithModel(holder=it.Holder(part=it.Sub()))
    assert plain.id != sub.id
    assert it.WithModel(holder=it.Holder(part=it.Sub(extra="x"))).id != sub.id


class Show(AutoTask[str]):
    """Writes its parameter as it prints."""

    v: Any

    def run(self) -> None:
        self.output().save(str(self.v))


@pytest.mark.parametrize("a, b", [(0.0, -0.0), (complex(1, 0.0), complex(1, -0.0)),
                                  (decimal.Decimal("1.0"), decimal.Decimal("1.00")),
                                  (decimal.Decimal("100"), decimal.Decimal("1E+2")),
                                  (decimal.Decimal("0"), decimal.Decimal("-0"))])
def test_equal_values_that_print_differently_do_not_share_an_output(a: Any, b: Any, memory_root: str) -> None:
    assert a == b and str(a) != str(b)
    one, two = Show(v=a), Show(v=b)
    assert one.id != two.id
    assert build_sequential([one, two]).n_succeeded == 2
    assert (one.load(), two.load()) == (str(a), str(b))


class When(AutoTask[str]):
    """Writes its datetime as it prints."""

    when: datetime.datetime

    def run(self) -> None:
        self.output().save(str(self.when))


def test_a_datetime_parsed_from_text_with_an_offset_has_an_id(memory_root: str) -> None:
    # pydantic parses these into its own fixed-offset zone (they raised TaskDefinitionError).
    utc = When(when="2024-01-01T00:00:00Z")
    assert When(when="2024-01-01T00:00:00+00:00").id == utc.id
    assert When.model_validate_json('{"when": "2024-01-01T00:00:00Z"}').id == utc.id
    assert pickle.loads(pickle.dumps(utc)).id == utc.id
    later = When(when="2024-01-01T02:00:00+02:00")  # the same instant, printed differently
    assert later.id != utc.id
    assert build_sequential([utc, later]).n_succeeded == 2
    assert (utc.load(), later.load()) == ("2024-01-01 00:00:00+00:00", "2024-01-01 02:00:00+02:00")
    # Another class of zone (its name prints "UTC+02:00", not "+02:00"): another id.
    zone = datetime.timezone(datetime.timedelta(hours=2))
    assert When(when=datetime.datetime(2024, 1, 1, 2, tzinfo=zone)).id != later.id


def test_the_second_of_a_repeated_wall_clock_time_is_another_value() -> None:
    # Equal and printed alike, but a naive one's timestamp() (local time) is an hour later.
    first = datetime.datetime(2021, 11, 7, 1, 30)
    assert first == first.replace(fold=1)
    assert differ(first, first.replace(fold=1))
    assert differ(first.time(), first.replace(fold=1).time())
    assert not differ(first.replace(fold=1), datetime.datetime(2021, 11, 7, 1, 30, fold=1))


def test_ip_addresses_count_by_class_and_value() -> None:
    assert not differ(ipaddress.ip_address("::1"), ipaddress.ip_address("0:0:0:0:0:0:0:1"))
    assert differ(ipaddress.ip_address("fe80::1%eth0"), ipaddress.ip_address("fe80::1"))  # the zone counts
    assert differ(ipaddress.ip_interface("10.0.0.1/24"), ipaddress.ip_interface("10.0.0.1/16"))
    assert differ(ipaddress.ip_address("10.0.0.1"), "10.0.0.1")
    assert differ(ipaddress.ip_address("10.0.0.1"), ipaddress.ip_network("10.0.0.1/32"))
    assert differ(ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2"))


def test_an_unsupported_value_is_refused_naming_the_fix() -> None:
    with pytest.raises(TaskDefinitionError, match=r"holds a re\.Pattern: .*declare the field as one of those "
                                                  r"\(a URL as str, say\) and convert it in run\(\)"):
        it.Value(v=re.compile("a+"))


def test_equal_values_of_one_spelling_give_one_id() -> None:
    assert not differ(-0.0, -0.0) and not differ([-0.0], [-0.0])
    assert differ(0.0, 0) and differ([-0.0], [0.0])
    assert not differ(decimal.Decimal("1.00"), decimal.Decimal("1.00"))
    assert differ(decimal.Decimal("1.0"), decimal.Decimal("1.01"))
    # Exact, not rounded to the context's 28 digits.
    assert differ(decimal.Decimal("1." + "0" * 40 + "1"), decimal.Decimal("1"))


def test_every_float_nan_is_one_value() -> None:
    assert not differ(float("nan"), float("-nan"))  # both print 'nan'
    assert differ(decimal.Decimal("NaN"), decimal.Decimal("-NaN"))  # these print their sign
    assert differ(float("nan"), decimal.Decimal("NaN"))
    assert it.Value(v=float("nan")) == it.Value(v=float("nan"))  # a task equals itself


def test_other_values_keep_their_type() -> None:
    assert differ((1, 2), [1, 2])
    assert differ(frozenset({1, 2}), [1, 2])
    assert not differ({1, 2}, frozenset({2, 1}))  # equal in Python, and both frozen alike
    assert differ(uuid.UUID(int=1), str(uuid.UUID(int=1)))
    assert differ(datetime.timedelta(seconds=1), 1)
    assert differ(1, 1.0) and differ(1, True) and differ(1, "1")
    assert differ(it.Point(x=1), {"x": 1, "y": 0.0})
    assert differ(it.Point, "identity_tasks.Point")
    assert differ({"__stardag_task_id__": it.A().id}, it.A())  # a dict cannot pass for a task
    # Aware datetimes keep their zone: the same instant in two zones prints and dates differently.
    utc = datetime.datetime(2024, 1, 1, 23, tzinfo=datetime.timezone.utc)
    assert differ(utc, utc.astimezone(datetime.timezone(datetime.timedelta(hours=2))))


# -- immutability --------------------------------------------------------------


def test_list_dict_and_set_parameters_cannot_change_after_the_id() -> None:
    task = it.Listy(items=[1, 2])
    with pytest.raises(TypeError, match="immutable"):
        task.items.append(3)
    for change in (lambda: task.items.extend([3]), lambda: task.items.__setitem__(0, 5), task.items.clear,
                   task.items.sort, lambda: task.items.__iadd__([4])):
        with pytest.raises(TypeError, match="immutable"):
            change()
    assert task.items == [1, 2] and task.id == it.Listy(items=[1, 2]).id
    assert isinstance(task.items, list) and task.items + [3] == [1, 2, 3]  # a copy is a plain list
    nested = it.Value(v={"a": [1, {"b": {2}}]})
    with pytest.raises(TypeError, match="immutable"):
        nested.v["a"][1]["b"].add(3)
    with pytest.raises(TypeError, match="immutable"):
        nested.v["c"] = 1
    typed = it.Typed()
    assert isinstance(typed.st, set) and isinstance(typed.d, dict)
    with pytest.raises(TypeError, match="immutable"):
        typed.st.add(5)


def test_the_callers_list_is_copied_not_shared() -> None:
    items = [1, 2]
    task = it.Listy(items=items)
    items.append(3)
    assert task.items == [1, 2] and task.id == it.Listy(items=[1, 2]).id


def test_a_model_parameter_is_copied_so_the_callers_object_can_change() -> None:
    point = it.Point(x=1)
    task = it.Value(v=point)
    point.x = 2  # the caller reuses its object for the next task
    assert task.v.x == 1 and task.id == it.Value(v=it.Point(x=1)).id
    check_unchanged(task)
    frozen = it.Frozen(items=[1])
    held = it.Value(v=frozen)
    with pytest.raises(TypeError, match="immutable"):
        held.v.items.append(2)


def test_a_changed_model_inside_a_task_fails_it_before_it_runs(memory_root: str) -> None:
    task = it.Value(v=[it.Point(x=1)])
    task.v[0].x = 5  # not frozen: the one change Python lets through
    with pytest.raises(TaskDefinitionError, match=r"parameter 'v' of task .* was changed after the task's id"):
        check_unchanged(task)
    with pytest.raises(TaskDefinitionError, match="was changed"):
        task.complete()
    try:  # found while the build asks whether it is complete
        summary = build_sequential([task])
    except TaskDefinitionError as exc:
        assert "was changed" in str(exc)
    else:
        assert summary.status is BuildStatus.FAILURE and "was changed" in str(summary.failures[0].error)
    assert not task.output().exists()


class NeverComplete(it.Value):
    def complete(self) -> bool:  # asks nothing of the parameters: the run itself is checked
        return False


def test_a_changed_model_fails_the_task_when_it_would_run(memory_root: str) -> None:
    task = NeverComplete(v=it.Point(x=1))
    task.v.y = 2.0
    summary = build_sequential([task])
    assert summary.status is BuildStatus.FAILURE
    error = summary.failures[0].error
    assert isinstance(error, TaskDefinitionError) and "parameter 'v' of task NeverComplete" in str(error)
    assert not task.output().exists()


def test_frozen_parameters_pickle_and_copy_as_frozen() -> None:
    import copy
    import pickle

    task = it.Value(v={"a": [1, {2}], "m": it.Point(x=1)})
    for clone in (pickle.loads(pickle.dumps(task)), copy.deepcopy(task), task.model_copy(deep=True)):
        assert clone.id == task.id and clone.v == task.v
        with pytest.raises(TypeError, match="immutable"):
            clone.v["a"].append(3)
    assert task.model_dump() == {"v": {"a": [1, {2}], "m": {"x": 1, "y": 0.0}}}
    assert it.Typed().model_dump_json()  # serialises without warnings


# -- values without an encoding --------------------------------------------------


def test_a_value_without_encoding_names_the_task_field_and_type() -> None:
    with pytest.raises(TaskDefinitionError, match=r"parameter 'v' of task Value holds a builtins\.object"):
        it.Value(v=object())
    with pytest.raises(TaskDefinitionError, match=r"holds a builtins\.object at v\['a'\]\[1\]"):
        it.Value(v={"a": [1, object()]})
    with pytest.raises(TaskDefinitionError, match="bytearray can change .*use bytes"):
        it.Value(v=bytearray(b"x"))
    with pytest.raises(TaskDefinitionError, match="nested too deeply"):
        deep: list[Any] = []
        for _ in range(5000):
            deep = [deep]
        it.Value(v=deep)


# -- class identity ---------------------------------------------------------------


def _module(name: str, source: str, file: str | None = None) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = file or f"/nonexistent/{name}.py"
    sys.modules[name] = module
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    return module


_TWIN = """
from stardag import AutoTask
class ModTwin(AutoTask[int]):
    x: int = 0
"""


def test_two_classes_of_one_name_from_two_modules_are_refused_with_the_fix() -> None:
    _module("identity_mod_a", _TWIN)
    with pytest.raises(TaskDefinitionError, match=r"identity_mod_b\.ModTwin has the same namespace '' and name 'ModTwin' "
                                                  r"as identity_mod_a\.ModTwin.*set task_namespace"):
        _module("identity_mod_b", _TWIN)
    other = _module("identity_mod_c", _TWIN.replace("x: int", "task_namespace = 'c'\n    x: int"))
    assert other.ModTwin.task_namespace == "c"


def test_a_class_redefined_in_its_module_replaces_it() -> None:
    first = _module("identity_mod_cell", _TWIN.replace("ModTwin", "Cell"))
    again = _module("identity_mod_cell", _TWIN.replace("ModTwin", "Cell"))  # a notebook cell run twice
    assert first.Cell().id == again.Cell().id


def test_one_file_imported_under_two_names_is_one_class(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "twice.py"
    path.write_text(_TWIN.replace("ModTwin", "Twice"))
    for name in ("identity_twice_one", "identity_twice_two"):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        finally:
            del sys.modules[name]


@pytest.mark.parametrize("namespace", ["../../x", "/abs", "a/b", "a\\b", "a\0b", "..", ".", "a..b", "C:x", "n" * 256,
                                       "é" * 128])
def test_a_namespace_that_leaves_the_target_root_is_refused(namespace: str) -> None:
    with pytest.raises(TaskDefinitionError, match=r"the namespace .* of task class .*Escape"):
        class Escape(AutoTask[int]):
            task_namespace: ClassVar[str] = namespace
    with pytest.raises(TaskDefinitionError, match="auto_namespace"):
        stardag.auto_namespace(namespace)


@pytest.mark.parametrize("name", ["../up", "a/b", "a\\b", "..", "", "N" * 256])  # Python refuses NUL itself
def test_a_class_name_that_leaves_the_target_root_is_refused(name: str) -> None:
    with pytest.raises(TaskDefinitionError, match=r"the name .* of task class"):
        type(name, (AutoTask[int],), {"__module__": __name__})


def test_other_bad_class_definitions_are_refused() -> None:
    with pytest.raises(TaskDefinitionError, match="task_namespace .* must be a str|namespace of .* must be a str"):
        class NotStr(AutoTask[int]):
            task_namespace: ClassVar[Any] = 3
    with pytest.raises(TaskDefinitionError, match="task_version .* must be a str"):
        class BadVersion(AutoTask[int]):
            task_version: ClassVar[Any] = 2
    with pytest.raises(TaskDefinitionError, match="field 'id'.*rename"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydantic's own shadowing warning

            class HasId(AutoTask[int]):
                id: str = "x"


def test_classes_of_one_name_nested_in_one_module_get_their_own_ids_and_outputs(memory_root: str) -> None:
    module = _module("identity_nested", """
from stardag import AutoTask
class Train:
    class Load(AutoTask[str]):
        def run(self): self.output().save("train")
class Test:
    class Load(AutoTask[str]):
        def run(self): self.output().save("test")
""")
    train, test = module.Train.Load(), module.Test.Load()
    assert train.id != test.id
    assert build_sequential([train, test]).n_succeeded == 2
    assert (train.load(), test.load()) == ("train", "test")


_ORDERED = """
from __future__ import annotations
from stardag import AutoTask
class Child(AutoTask[int]):
    x: int = 0
class Parent(AutoTask[int]):
    deps: tuple[Child, ...] = ()
"""


def test_a_forward_reference_resolved_later_gives_the_same_id() -> None:
    # Child defined after Parent: its annotation resolves only at Parent.model_rebuild().
    # The declared tuple still counts as one (a plain array), as in the other order.
    first = _module("identity_forward", _ORDERED)
    later = _module("identity_forward", _ORDERED.replace(
        "class Child(AutoTask[int]):\n    x: int = 0\n", "") + "class Child(AutoTask[int]):\n    x: int = 0\n"
        "Parent.model_rebuild()\n")
    assert later.Parent.__pydantic_fields__["deps"].annotation == tuple[later.Child, ...]
    assert later.Parent(deps=(later.Child(),)).id == first.Parent(deps=(first.Child(),)).id


@pytest.mark.parametrize("config, says", [
    ("frozen=False", "frozen=False: a parameter assigned after"),
    ("extra='allow'", "extra='allow': undeclared parameters would not count"),
])
def test_a_task_class_whose_parameters_could_escape_its_id_is_refused(config: str, says: str) -> None:
    with pytest.raises(TaskDefinitionError, match=rf"task class identity_config\.Loose sets model_config {says}"):
        _module("identity_config", f"""
from pydantic import ConfigDict
from stardag import AutoTask
class Loose(AutoTask[int]):
    model_config = ConfigDict({config})
    x: int = 0
""")


def test_the_chain_of_100_000_still_hashes_its_own_parameters_only() -> None:
    top = tt.chain(1000)
    assert len(stardag._ids.dumps(stardag._ids.canonical_params(top.__dict__))) < 200
    assert isinstance(top, Task)


_SCRIPT_WITH_AUTO_NAMESPACE = """
import enum, json, os, sys
from pydantic import BaseModel
import stardag
stardag.auto_namespace(__name__)
from stardag import AutoTask
from stardag.build import DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build

class Cfg(BaseModel):  # a model and an enum of the script count by their class: __main__.Cfg
    n: int = 1

class Mode(enum.Enum):
    FAST = "fast"

class Leaf(AutoTask[int]):
    x: int = 0
    cfg: Cfg = Cfg()
    mode: Mode = Mode.FAST
    def run(self):
        self.output().save(self.x)

class Parent(AutoTask[int]):
    def run(self):
        leaf = Leaf(x=1)  # made in the worker
        yield leaf
        self.output().save(leaf.load() + 1)

if __name__ == "__main__":
    stardag.set_target_root(sys.argv[1])
    runner = HybridConcurrentTaskRunner(execution_mode_selector=DefaultExecutionModeSelector("process"),
                                        max_process_workers=1, process_start_method="spawn")
    first, again = build([Parent()], task_runner=runner), build([Parent()], task_runner=runner)
    print(json.dumps({"namespace": Leaf.task_namespace, "leaf": Leaf(x=1).id, "first": first.n_succeeded,
                      "again": again.n_succeeded, "files": sorted(
                          os.path.relpath(os.path.join(d, f), sys.argv[1]) for d, _, fs in os.walk(sys.argv[1])
                          for f in fs)}))
"""


def test_a_script_s_tasks_get_the_same_ids_in_spawned_workers(fresh_dir: str) -> None:
    # A spawned worker imports the script as __mp_main__: its tasks got that namespace, its
    # models and enums that module, so other ids and another directory (every build ran them
    # all again), and a model parameter looked changed after the id (the build failed).
    import json
    import subprocess

    from conftest import subprocess_env

    script = pathlib.Path(fresh_dir, "script.py")
    script.write_text(_SCRIPT_WITH_AUTO_NAMESPACE)
    done = subprocess.run([sys.executable, str(script), str(pathlib.Path(fresh_dir, "root"))], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["namespace"], result["first"], result["again"]) == ("__main__", 2, 0), result
    leaf = result["leaf"]
    assert f"__main__/Leaf/{leaf[:2]}/{leaf}.json" in result["files"]
    assert not any(f.startswith("__mp_main__") for f in result["files"]), result["files"]


def test_auto_namespace_names_the_module_tasks() -> None:
    module = _module("identity_auto.sub", """
import stardag
from typing import ClassVar
stardag.auto_namespace("identity_auto")
class Named(stardag.AutoTask[int]):
    x: int = 0
class Own(stardag.AutoTask[int]):
    task_namespace: ClassVar[str] = "mine"
""")
    assert module.Named.task_namespace == "identity_auto"
    assert module.Own.task_namespace == "mine"
    assert module.Named().id != tt.Leaf().id
    assert tt.Leaf.task_namespace == ""  # other modules keep theirs
