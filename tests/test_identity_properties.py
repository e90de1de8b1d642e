"""Property-based tests of the identity rule: same type and equal value <=> same id, in any process.

Generated parameter values of every supported type, nested in lists, tuples,
dicts, sets, models and tasks. ``same`` below is the rule written out plainly;
``confusable`` makes the values a careless encoding would mix up (an enum and
its value, a tuple and a list, a date and its ISO text...). Derandomised, no
example database: the same examples on every run.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import enum
import ipaddress
import json
import os
import pathlib
import pickle
import random
import subprocess
import sys
import tempfile
import uuid
from typing import Any, ClassVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

import identity_tasks as it
from conftest import subprocess_env
from stardag import AutoTask, Task, TaskDefinitionError
from stardag._frozen import FrozenDict, FrozenList, FrozenSet
from stardag.target import target_root

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_PARSED = TypeAdapter(datetime.datetime)  # pydantic's own fixed-offset zone, from text
_ZONES = st.one_of(st.none(), st.just(datetime.timezone.utc),
                   st.integers(-14 * 60, 14 * 60).map(lambda m: datetime.timezone(datetime.timedelta(minutes=m))),
                   st.integers(-14 * 60, 14 * 60).map(lambda m: _PARSED.validate_python(
                       f"2000-01-01T00:00:00{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}").tzinfo))
_PATH_TEXT = st.text(st.sampled_from("ab./_-é"), min_size=1, max_size=6)

# Hashable values: set members and dict keys (no NaN: a set cannot find it again).
hashable = st.deferred(lambda: st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.integers(), st.floats(allow_nan=False),
    st.text(max_size=6), st.binary(max_size=6), st.sampled_from([*it.Mode, *it.Speed, *it.Level]),
    st.decimals(allow_nan=False, places=3), st.dates(), st.datetimes(timezones=_ZONES), st.times(),
    st.timedeltas(), st.uuids(), _PATH_TEXT.map(pathlib.PurePosixPath), _PATH_TEXT.map(pathlib.Path),
    st.ip_addresses(v=4, network=ipaddress.ip_network("10.0.0.0/30")), st.ip_addresses(v=6),
    st.builds(it.A, x=st.integers(-3, 3)), st.complex_numbers(allow_nan=False, max_magnitude=1e6),
    st.sampled_from([it.Point, it.Mode, int]), st.lists(hashable, max_size=2).map(tuple),
))

leaves = st.one_of(hashable, st.floats(), st.just(decimal.Decimal("NaN")),
                   st.builds(it.Point, x=st.integers(-2, 2), y=st.floats(allow_nan=False)),
                   st.builds(it.SGD, lr=st.floats(0, 1)), st.builds(it.Adam, lr=st.floats(0, 1)))

values = st.recursive(leaves, lambda children: st.one_of(
    st.lists(children, max_size=3),
    st.lists(children, max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=3), children, max_size=3),
    st.dictionaries(hashable, children, max_size=3),
    st.frozensets(hashable, max_size=3),
    st.sets(hashable, max_size=3),
    st.builds(it.Box, v=children),
    st.builds(it.FrozenBox, v=children),
    st.builds(it.Value, v=children),  # a task inside: counts by its id
), max_leaves=10)


def _kind(value: Any) -> type:
    cls = type(value)
    return {FrozenList: list, FrozenDict: dict, FrozenSet: frozenset, set: frozenset}.get(cls, cls)


def same(a: Any, b: Any) -> bool:
    """The identity rule: values of the same type that are equal and print alike (a float NaN is one value)."""
    kind = _kind(a)
    if kind is not _kind(b):
        return False
    if isinstance(a, Task):
        return a.id == b.id
    if isinstance(a, BaseModel):
        return all(same(a.__dict__[name], b.__dict__[name]) for name in type(a).model_fields)
    if isinstance(a, enum.Enum):
        return a is b
    if kind is float:
        return repr(a) == repr(b)  # 0.0 is not -0.0; every NaN prints 'nan'
    if kind is decimal.Decimal:
        return str(a) == str(b)
    if kind is complex:
        return same(a.real, b.real) and same(a.imag, b.imag)
    if kind in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if kind is dict:
        return len(a) == len(b) and all(any(same(k, j) and same(a[k], b[j]) for j in b) for k in a)
    if kind is frozenset:
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if kind in (datetime.datetime, datetime.time):
        return a.isoformat() == b.isoformat() and str(a.tzinfo) == str(b.tzinfo) and (
            type(a.tzinfo) is type(b.tzinfo)) and a.fold == b.fold
    return a == b


def _alternatives(x: Any) -> list[Any]:
    """Values a careless encoding would take for ``x`` (or a near miss of it)."""
    out: list[Any] = []
    if isinstance(x, Task):
        out += [x.model_copy(update={"x": x.x + 1}) if isinstance(x, it.A) else it.Value(v=None), it.Box(v=x)]
    elif isinstance(x, BaseModel):
        fields = dict(x.__dict__)
        out += [fields, it.Adam(lr=0.5) if isinstance(x, it.SGD) else it.SGD(lr=0.5)]
        if isinstance(x, (it.Box, it.FrozenBox)):
            out += [it.FrozenBox(v=x.v) if isinstance(x, it.Box) else it.Box(v=x.v)]
    elif isinstance(x, enum.Enum):
        out += [x.value] + [e for e in (*it.Mode, *it.Speed, *it.Level) if e.value == x.value and e is not x]
    elif x is None:
        out += [0, False, "", [], "None"]
    elif isinstance(x, bool):
        out += [int(x), float(x), str(x).lower()]
    elif isinstance(x, int):
        out += [str(x), decimal.Decimal(x), x + 1] + ([float(x)] if abs(x) < 2**53 else [])
    elif isinstance(x, float):
        out += [str(x), -x, 1.5] + ([int(x)] if x == x and abs(x) < 1e18 and x == int(x) else [])
    elif isinstance(x, str):
        out += [x.encode(), x + "x", pathlib.PurePosixPath(x or ".")] + ([it.Mode(x)] if x in ("fast", "slow") else [])
    elif isinstance(x, bytes):
        out += [x.decode("latin-1"), x.hex(), x + b"\0"]
    elif isinstance(x, decimal.Decimal):
        out += [str(x)]
        if x.is_finite():  # a float, a near miss, and the same value at another scale
            sign, digits, exponent = x.as_tuple()
            out += [float(x), x + 1, decimal.Decimal((sign, (*digits, 0), exponent - 1)), -x]
    elif isinstance(x, datetime.datetime):
        out += [x.isoformat(), x.date(), x + datetime.timedelta(microseconds=1)]
    elif isinstance(x, (datetime.date, datetime.time)):
        out += [x.isoformat()]
    elif isinstance(x, datetime.timedelta):
        out += [x.total_seconds(), str(x)]
    elif isinstance(x, uuid.UUID):
        out += [str(x), x.int]
    elif isinstance(x, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        out += [str(x), int(x), ipaddress.ip_network(x), x + 1 if int(x) < 2**32 - 1 else x - 1]
    elif isinstance(x, pathlib.PurePath):
        out += [str(x), pathlib.PurePosixPath(x) if isinstance(x, pathlib.Path) else pathlib.Path(x)]
    elif isinstance(x, (list, tuple)):
        out += [tuple(x) if isinstance(x, list) else list(x), [*x, None]]
        try:
            out.append(frozenset(x))
        except TypeError:
            pass
    elif isinstance(x, dict):
        out += [list(x.items()), {**x, "extra": 1}]
        out.append({str(k): v for k, v in x.items()})
    elif isinstance(x, (set, frozenset)):
        out += [list(x), frozenset([*x, "extra"])]
    elif isinstance(x, type):
        out += [f"{x.__module__}.{x.__qualname__}"]
    return out


def _nodes(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every node inside lists, tuples, dicts and Boxes (replaceable ones)."""
    found = [path]
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found += _nodes(v, (*path, i))
    elif isinstance(value, dict):
        for k, v in value.items():
            found += _nodes(v, (*path, ("key", k)))
    elif isinstance(value, (it.Box, it.FrozenBox)):
        found += _nodes(value.v, (*path, "v"))
    return found


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    step, rest = path[0], path[1:]
    if isinstance(value, (list, tuple)):
        items = list(value)
        items[step] = _replace(items[step], rest, new)
        return type(value)(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {k: (_replace(v, rest, new) if k == step[1] and type(k) is type(step[1]) else v)
                for k, v in value.items()}
    return type(value)(v=_replace(value.v, rest, new))


def _get(value: Any, path: tuple) -> Any:
    for step in path:
        value = value.v if step == "v" else value[step[1]] if isinstance(step, tuple) else value[step]
    return value


def confusable(value: Any, seed: int) -> Any:
    """``value`` with one node swapped for an alternative (the node and alternative chosen by ``seed``)."""
    rnd = random.Random(seed)
    paths = _nodes(value)
    for _ in range(5):
        path = rnd.choice(paths)
        alternatives = _alternatives(_get(value, path))
        if alternatives:
            try:
                return _replace(value, path, rnd.choice(alternatives))
            except (TypeError, ValueError):
                continue
    return value


def equal_variant(value: Any) -> Any:
    """The same value written differently: another float NaN, other orders."""
    if type(value) is float:
        return float("-nan") if value != value else value
    if type(value) in (list, tuple):
        return type(value)(equal_variant(v) for v in value)
    if type(value) is dict:
        return {k: equal_variant(v) for k, v in reversed(list(value.items()))}
    if type(value) in (set, frozenset):
        return type(value)(reversed([equal_variant(v) for v in value]))
    if type(value) in (it.Box, it.FrozenBox, it.Value):
        return type(value)(v=equal_variant(value.v))
    return value


def _id(value: Any) -> str:
    return it.Value(v=value).id


@PROPERTY
@given(values)
def test_equal_values_give_equal_ids(value: Any) -> None:
    task = it.Value(v=value)
    assert task.id == _id(copy.deepcopy(value)) == _id(pickle.loads(pickle.dumps(value)))
    assert pickle.loads(pickle.dumps(task)).id == task.id
    assert it.Value(v=task.v).id == task.id  # the frozen copy is the same value


@PROPERTY
@given(values)
def test_equal_values_written_differently_give_equal_ids(value: Any) -> None:
    variant = equal_variant(value)
    assert same(value, variant)
    assert _id(value) == _id(variant), (value, variant)


@PROPERTY
@given(st.data())
def test_ids_are_equal_exactly_when_values_are_the_same(data: st.DataObject) -> None:
    a = data.draw(values, label="a")
    b = data.draw(st.one_of(
        st.just(copy.deepcopy(a)),
        st.integers(0, 2**32).map(lambda seed: confusable(a, seed)),
        values,
    ), label="b")
    assert (_id(a) == _id(b)) == same(a, b), (a, b)


@PROPERTY
@given(values, st.integers(0, 2**32))
def test_a_confused_value_gets_another_id(value: Any, seed: int) -> None:
    twin = confusable(value, seed)
    if not same(value, twin):
        assert _id(value) != _id(twin), (value, twin)


@settings(PROPERTY, max_examples=1)
@given(st.lists(values, min_size=60, max_size=60))
def test_ids_are_the_same_in_other_processes_and_hash_seeds(batch: list[Any]) -> None:
    script = ("import json, pickle, sys, identity_tasks as it\n"
              "batch = pickle.loads(bytes.fromhex(sys.stdin.read()))\n"
              "print(json.dumps([it.Value(v=v).id for v in batch]))\n")
    here = [_id(v) for v in batch]
    for seed in ("0", "1", "31337"):
        result = subprocess.run([sys.executable, "-c", script], input=pickle.dumps(batch).hex(), capture_output=True,
                                text=True, env=subprocess_env(PYTHONHASHSEED=seed), timeout=60)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == here, seed


# -- declared types: tuples and sets that the field's type fixes are plain arrays --

_small = st.integers(0, 1)
_word = st.sampled_from(["", "1"])


def _seq_of(element: Any) -> Any:
    """A list or a tuple of ``element``: pydantic makes either what the field declares."""
    items = st.lists(element, max_size=3)
    return st.one_of(items, items.map(tuple))


_DECLARED_FIELDS = {
    "t": _seq_of(_small),
    "pair": st.one_of(st.none(), st.tuples(_small, _word)),
    "pairs": st.lists(st.tuples(_small, _word), max_size=3),
    "words": st.one_of(st.frozensets(_word, max_size=3), st.sets(_word, max_size=3)),
    "points": st.sets(st.tuples(_small, _small), max_size=3),
    "named": st.dictionaries(_word, st.lists(_small, max_size=2).map(tuple), max_size=2),
    "anything": _seq_of(st.one_of(_small, _word, st.booleans(), st.sampled_from([0.0, -0.0, 1.0]),
                                  _seq_of(_small))),
    "either": _seq_of(_small),
    "nested": _seq_of(st.lists(_small, max_size=2).map(tuple)),
}
_declared_kwargs = st.fixed_dictionaries({}, optional=_DECLARED_FIELDS)


@PROPERTY
@given(st.data())
def test_ids_of_declared_types_are_equal_exactly_when_values_are_the_same(data: st.DataObject) -> None:
    # Two values of one field over a random rest: the second drawn anew, or the first
    # with one node swapped (validation turns many swaps back into the same value).
    rest = data.draw(_declared_kwargs, label="rest")
    name = data.draw(st.sampled_from(sorted(_DECLARED_FIELDS)), label="field")
    first = data.draw(_DECLARED_FIELDS[name], label="a")
    second = data.draw(st.one_of(_DECLARED_FIELDS[name],
                                 st.integers(0, 2**32).map(lambda seed: confusable(first, seed))), label="b")
    a = it.Declared(**{**rest, name: first})
    try:
        b = it.Declared(**{**rest, name: second})
    except ValidationError:  # a swap the declared type refuses
        return
    equal = all(same(a.__dict__[field], b.__dict__[field]) for field in _DECLARED_FIELDS)
    assert (a.id == b.id) == equal, (a, b)


# -- names: an output stays one directory per part under the target root ------------

_NAME_TEXT = st.text(st.one_of(st.sampled_from(list("./\\\0:~$ -_aéZ")), st.characters()), max_size=8)


@PROPERTY
@given(_NAME_TEXT, _NAME_TEXT)
def test_a_namespace_and_name_are_refused_or_stay_one_directory_each_under_the_root(namespace: str,
                                                                                     name: str) -> None:
    root = os.path.join(tempfile.gettempdir(), "stardag-never-written")
    try:
        cls = type(name, (AutoTask[int],), {"task_namespace": namespace, "__module__": "identity_names",
                                            "__annotations__": {"task_namespace": ClassVar[str]}})
    except TaskDefinitionError:
        return
    except ValueError:  # Python's own refusal: a NUL in a class name
        assert "\0" in name
        return
    with target_root(root):
        path = cls().output().path
    parts = os.path.relpath(os.path.realpath(path), os.path.realpath(root)).split(os.sep)
    assert parts[:2] == [namespace or "default", name] and len(parts) == 4, (namespace, name, path)
