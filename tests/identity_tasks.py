"""Task and model classes for the identity tests; importable, so other processes can load them.

``stable_cases()`` are tasks whose ids must not change: they are the simple
cases ids had before types were kept (test_ids.py hard-codes their ids).
``corpus()`` is a fixed collection of parameter values of every supported type,
hash-seed sensitive ones included, for the cross-process checks.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import pathlib
import uuid
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict

from stardag import AutoTask, Task


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


class Speed(enum.Enum):
    """Same values as ``Mode``: another enum, so other ids."""

    FAST = "fast"
    SLOW = "slow"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class A(AutoTask[dict]):
    x: int = 1

    def run(self) -> None:
        self.output().save({"x": self.x})


class Cfg(BaseModel):
    dep: A


class Use(AutoTask[dict]):
    """Loads the output of the task inside its model parameter."""

    cfg: Cfg

    def requires(self) -> Any:
        return self.cfg.dep

    def run(self) -> None:
        self.output().save(self.cfg.dep.load())


class SGD(BaseModel):
    lr: float


class Adam(BaseModel):
    lr: float


class Train(AutoTask[str]):
    optimizer: Union[SGD, Adam]

    def run(self) -> None:
        self.output().save(type(self.optimizer).__name__)


class Base(BaseModel):
    size: int = 1


class Sub(Base):
    extra: str = "more"


class Holder(BaseModel):
    part: Base


class WithModel(AutoTask[int]):
    holder: Holder


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = "f"
    items: list[int] = []


class Point(BaseModel):
    x: int = 0
    y: float = 0.0


class Box(BaseModel):
    """A model holding any value: nests models in the property tests."""

    v: Any = None


class FrozenBox(BaseModel):
    model_config = ConfigDict(frozen=True)

    v: Any = None


class Value(AutoTask[str]):
    """One parameter of any type: what the property tests vary."""

    v: Any = None

    def run(self) -> None:
        self.output().save(repr(self.v))


class Listy(AutoTask[int]):
    items: list[int] = []

    def run(self) -> None:
        self.output().save(sum(self.items))


class Typed(AutoTask[int]):
    """Declared types of every simple kind: its ids are kept from before types were kept."""

    i: int = 0
    f: float = 0.5
    s: str = "s"
    b: bool = True
    n: Optional[int] = None
    li: list[int] = [1, 2]
    ls: list[str] = ["a", "ü"]
    d: dict[str, int] = {"a": 1}
    nested: list[list[int]] = [[1], [2]]
    t: tuple[int, ...] = (1, 2)
    pairs: list[tuple[int, str]] = [(1, "a")]
    fs: frozenset[str] = frozenset({"x", "y", "z", "alpha", "beta"})
    st: set[int] = {3, 1}
    lit: Literal["a", "b"] = "a"


class Declared(AutoTask[int]):
    """Fields whose declared types fix tuples and sets (encoded as plain arrays), and unions that do not."""

    t: tuple[int, ...] = ()
    pair: Optional[tuple[int, str]] = None
    pairs: list[tuple[int, str]] = []
    words: frozenset[str] = frozenset()
    points: set[tuple[int, int]] = set()
    named: dict[str, tuple[int, ...]] = {}
    anything: tuple[Any, ...] = ()
    either: Union[tuple[int, ...], list[int]] = ()
    nested: tuple[tuple[int, ...], ...] = ()


class Deps(AutoTask[int]):
    deps: tuple[Task, ...] = ()
    listed: list[Task] = []
    named: dict[str, Task] = {}
    one: Optional[Task] = None


def stable_cases() -> dict[str, Task]:
    """Tasks whose ids are hard-coded in test_ids.py, computed before types were kept."""
    leaf = A(x=7)
    return {
        "A(x=7)": leaf,
        "Typed()": Typed(),
        "Typed(...)": Typed(i=-3, f=1e-300, s="", b=False, n=4, li=[], ls=["q"], d={"z": 0, "a": 2},
                            nested=[], t=(), pairs=[(2, "b"), (1, "a")], fs=frozenset(), st={9}, lit="b"),
        "Typed(f=nan)": Typed(f=float("nan")),
        "Typed(f=-inf)": Typed(f=float("-inf")),
        "Deps(...)": Deps(deps=(leaf, A()), listed=[leaf], named={"k": A(x=2)}, one=leaf),
        "Value(v=None)": Value(),
        "Value(v=[1, 'a', None, 2.5, True])": Value(v=[1, "a", None, 2.5, True]),
        "Value(v={'k': [1, {'n': None}]})": Value(v={"k": [1, {"n": None}]}),
        "Value(v=A())": Value(v=A()),
        "Value(v=2**70)": Value(v=2**70),
    }


def corpus() -> list[Any]:
    """Parameter values of every supported type and some nestings (sets of str depend on the hash seed)."""
    words = ["pear", "apple", "fig", "kiwi", "plum", "ünï", "", "a b"]
    return [
        None, True, False, 0, -1, 2**70, 0.1, -0.0, float("nan"), float("inf"), 1e-300, "text ✓",
        b"\x00\xffbytes", [1, [2, [3]]], (1, "a", None), {"b": 1, "a": [2]}, {1: "one", "1": "str one"},
        {(1, 2): "tuple key", frozenset({"x"}): "set key"}, frozenset(words), set(words[:5]),
        {frozenset({"a", "b"}), frozenset({"c"})}, Mode.FAST, Speed.FAST, Level.HIGH,
        pathlib.PurePosixPath("data/x"), pathlib.Path("data"), datetime.date(2024, 2, 29),
        datetime.datetime(2024, 1, 2, 3, 4, 5, 6), datetime.datetime(2024, 1, 2, 3, tzinfo=datetime.timezone.utc),
        datetime.time(12, 30), datetime.timedelta(days=1, seconds=2), uuid.UUID(int=12345),
        decimal.Decimal("1.50"), decimal.Decimal("-0"), decimal.Decimal("NaN"), complex(1, -2),
        Point(x=1, y=2.5), SGD(lr=0.1), Adam(lr=0.1), Sub(size=2), Holder(part=Sub()), Frozen(items=[1, 2]),
        A(x=3), Cfg(dep=A(x=4)), [A(x=5), {"k": A(x=6)}], Mode, Point,
        {"nested": [(Point(), frozenset({Level.LOW, Level.HIGH}), {b"k": decimal.Decimal("2")})]},
    ]
