"""Task ids: a canonical, typed encoding of a task's parameters, hashed.

The id is the SHA-256 (first 32 hex digits) of canonical JSON holding the task
class's namespace, qualified name and version and every parameter value with its type:

- ``None``, bools, ints, strs and floats are JSON values (every NaN is ``NaN``;
  ``-0.0`` is not ``0.0``: equal, but they print and compute differently); lists
  are arrays; dicts whose keys are all plain strs are objects. These are the
  encodings ids had before types were kept.
- A task contributes only its own id, so hashing costs O(own parameters).
- Every other value is ``{"__stardag__": [type, payload]}``, ``type`` being the
  runtime class as ``module.qualname``: tuples, sets (sorted canonically, so no
  hash seed shows), other dicts (sorted ``[key, value]`` pairs), enums (value),
  pydantic models (every field of the runtime class, extras included), paths,
  bytes, dates, datetimes and times (ISO, with offset and zone), timedeltas,
  UUIDs, IP addresses (as numbers; networks, interfaces), decimals (``str``: ``1.0`` and
  ``1.00`` are two values), complex numbers, classes, and subclasses of int,
  float and str.
- Where a field's declared type makes a value a tuple or a set (``tuple[Task,
  ...]``, ``list[tuple[int, int]]``, ``frozenset[str]``), it can be nothing
  else: there it is a plain (sorted) array, as before types were kept.

Anything else raises :class:`UnencodableValue`. This module needs neither
pydantic nor the rest of stardag to import (the tests load it alone).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import hashlib
import ipaddress
import json
import pathlib
import types
import typing
import uuid
from typing import Any, Callable, Mapping

from ._frozen import FrozenDict, FrozenList, FrozenSet

__all__ = [
    "TAG",
    "TASK_REF",
    "UnencodableValue",
    "canonical_params",
    "dumps",
    "encode",
    "field_encoder",
    "freeze",
    "is_model_class",
    "make_task_id",
    "map_tasks",
    "register_task_type",
    "type_name",
]

_UnionType = getattr(types, "UnionType", None)  # X | Y (3.10+)

TASK_REF = "__stardag_task_id__"
TAG = "__stardag__"


class UnencodableValue(TypeError):
    """A value has no canonical encoding; ``path`` locates it inside the parameter."""

    def __init__(self, value: Any, reason: str = ""):
        super().__init__(reason or f"cannot encode a value of type {type_name(type(value))}")
        self.value_type = type(value)
        self.reason = reason
        self.path: list[Any] = []


def type_name(cls: type) -> str:
    """``module.qualname``: pathlib's classes by their public name (their module moved in 3.13),
    and a script's classes as ``__main__``'s also where a worker imported it as ``__mp_main__``."""
    name = _names.get(cls)
    if name is None:
        module = cls.__module__
        name = _names[cls] = f"{'__main__' if module == '__mp_main__' else module}.{cls.__qualname__}"
    return name


_names: dict[type, str] = {cls: f"pathlib.{cls.__name__}" for cls in (
    pathlib.PurePath, pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.Path, pathlib.PosixPath,
    pathlib.WindowsPath)}


dumps: Callable[[Any], str] = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True).encode
"""Canonical JSON text of an encoded value."""


def _sort_key(encoded: Any) -> str:
    # The key sets were sorted by before types were kept: unchanged, so set ids are too.
    return json.dumps(encoded, sort_keys=True)


# -- encoders, one per runtime type (found once per type, then a dict lookup) --

_encoders: dict[type, Callable[[Any], Any]] = {}
_task_types: tuple[type, ...] = ()


def register_task_type(cls: type, task_ref: Callable[[Any], Any]) -> None:
    """Instances of ``cls`` (and of its subclasses) encode as ``task_ref(task)`` and are never frozen."""
    global _task_types
    _task_types += (cls,)
    for klass in [cls, *(t for t in _encoders if issubclass(t, cls))]:
        _encoders[klass] = task_ref
        _freezers[klass] = None


def encode(value: Any) -> Any:
    """The canonical (JSON-able) form of ``value``."""
    encoder = _encoders.get(type(value))
    if encoder is None:
        encoder = _classify(type(value))
    return encoder(value)


def _same(value: Any) -> Any:
    return value




def _locate(pairs: Any, exc: UnencodableValue) -> UnencodableValue:
    """Prefix ``exc.path`` with the first key whose values (``(key, *values)``) do not encode."""
    for key, *values in pairs:
        try:
            for value in values:
                encode(value)
        except UnencodableValue:
            exc.path.insert(0, key)
            break
    return exc


def _seq(value: Any) -> list[Any]:
    try:
        return [encode(v) for v in value]
    except UnencodableValue as exc:
        raise _locate(enumerate(value), exc) from None


def _tuple(value: tuple) -> Any:
    return {TAG: ["builtins.tuple", _seq(value)]}


def _sorted_set(value: Any) -> list[Any]:
    try:
        return sorted((encode(v) for v in value), key=_sort_key)
    except UnencodableValue as exc:
        raise _locate(((repr(v), v) for v in value), exc) from None


def _set(value: Any) -> Any:
    return {TAG: ["builtins.frozenset", _sorted_set(value)]}  # a set and a frozenset compare equal


def _pairs(value: Any) -> list[Any]:
    try:
        pairs = [[encode(k), encode(v)] for k, v in value.items()]
    except UnencodableValue as exc:
        raise _locate(((k, k, v) for k, v in value.items()), exc) from None
    pairs.sort(key=lambda pair: _sort_key(pair[0]))
    return pairs


def _dict(value: dict) -> Any:
    if TAG not in value and TASK_REF not in value and all(type(k) is str for k in value):
        try:
            return {k: encode(v) for k, v in value.items()}
        except UnencodableValue as exc:
            raise _locate(value.items(), exc) from None
    return {TAG: ["builtins.dict", _pairs(value)]}


def _bytes(value: bytes) -> Any:
    return {TAG: ["builtins.bytes", value.hex()]}



# pydantic's fixed-offset zone, which it gives datetimes parsed from text ("...Z", "...+02:00").
_PYDANTIC_TZ = "pydantic_core._pydantic_core.TzInfo"


def _zoned(value: Any) -> Any:
    """ISO text of a datetime or time, the zone's key where the offset alone does not tell it, the fold."""
    if value.fold:
        # The second of a repeated wall-clock time: no ISO text shows it, yet a naive one's
        # timestamp() (local time) is an hour later. An object payload: no other has that shape.
        return {"fold": 1, "time": _unfolded(value)}
    return _unfolded(value)


def _unfolded(value: Any) -> Any:
    tz = value.tzinfo
    if tz is None or isinstance(tz, datetime.timezone):
        return value.isoformat()  # the offset is in the text
    if type_name(type(tz)) == _PYDANTIC_TZ:
        # A fixed offset too, but another class than datetime.timezone: it names
        # itself differently ("+02:00", not "UTC+02:00"), so it keeps its type.
        return [value.isoformat(), _PYDANTIC_TZ]
    key = getattr(tz, "key", None)  # zoneinfo.ZoneInfo
    if not isinstance(key, str):
        raise UnencodableValue(tz, f"cannot encode a time zone of type {type_name(type(tz))} "
                                   "(use zoneinfo.ZoneInfo or datetime.timezone)")
    return [value.isoformat(), key]


def _typed(payload: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def encoder(value: Any) -> Any:
        return {TAG: [type_name(type(value)), payload(value)]}

    return encoder


def _model_fields(value: Any) -> dict[str, Any]:
    fields = value.__dict__
    names = type(value).__pydantic_fields__
    try:
        out = {name: encode(fields[name]) for name in names}
        extra = value.__pydantic_extra__
        if extra:
            out.update((name, encode(v)) for name, v in extra.items())
    except UnencodableValue as exc:
        raise _locate([(name, fields[name]) for name in names] + list((extra or {}).items()), exc) from None
    return out


def _class(value: type) -> Any:
    return {TAG: ["builtins.type", type_name(value)]}  # not the metaclass: enum's was renamed in 3.11


_IP_TYPES = (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network,
             ipaddress.IPv4Interface, ipaddress.IPv6Interface)


def _ip(value: Any) -> Any:
    """An IP address, network or interface as numbers (the class tells which).

    Not its text: Python 3.13 prints an IPv4-mapped IPv6 address otherwise
    (``::ffff:192.168.1.1``, not ``::ffff:c0a8:101``).
    """
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        address, prefix = value.network_address, value.prefixlen
    elif isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        address, prefix = value.ip, value.network.prefixlen
    else:
        address, prefix = value, None
    return [int(address), prefix, getattr(address, "scope_id", None)]  # an IPv6 zone: fe80::1%eth0


def _unencodable(value: Any) -> Any:
    raise UnencodableValue(value)


def _mutable(what: str) -> Callable[[Any], Any]:
    def encoder(value: Any) -> Any:
        raise UnencodableValue(value, f"a {type_name(type(value))} can change after the id is computed (use {what})")

    return encoder


def is_model_class(cls: type) -> bool:
    """A pydantic model class (checked without importing pydantic)."""
    return all(hasattr(cls, name) for name in ("__pydantic_fields__", "__pydantic_extra__", "model_config"))


def _classify(cls: type) -> Callable[[Any], Any]:
    """Find the encoder for a type seen for the first time, and remember it."""
    if _task_types and issubclass(cls, _task_types):
        encoder = _encoders[next(t for t in _task_types if issubclass(cls, t))]
    elif issubclass(cls, enum.Enum):  # before int and str: IntEnum, StrEnum
        encoder = _typed(lambda v: encode(v.value))
    elif issubclass(cls, type):
        encoder = _class
    elif is_model_class(cls):
        encoder = _typed(_model_fields)
    elif issubclass(cls, tuple):  # a named tuple
        encoder = _typed(_seq)
    elif issubclass(cls, bytearray):
        encoder = _mutable("bytes")
    elif issubclass(cls, (list, dict, set)):
        encoder = _mutable("a plain list, dict or set: those are frozen")
    elif issubclass(cls, (datetime.datetime, datetime.time)):
        encoder = _typed(_zoned)
    elif issubclass(cls, datetime.date):
        encoder = _typed(datetime.date.isoformat)
    elif issubclass(cls, datetime.timedelta):
        encoder = _typed(lambda v: [v.days, v.seconds, v.microseconds])
    elif issubclass(cls, decimal.Decimal):
        # Exact, scale and sign kept: Decimal("1.0") == Decimal("1.00"), yet they print (and
        # compute: 1.0 * 3 is 3.0, 1.00 * 3 is 3.00) differently; so do NaN and -NaN.
        encoder = _typed(str)
    elif issubclass(cls, _IP_TYPES):
        encoder = _typed(_ip)
    elif issubclass(cls, (pathlib.PurePath, uuid.UUID)):
        encoder = _typed(str)
    elif issubclass(cls, complex):
        encoder = _typed(lambda v: [v.real, v.imag])
    elif issubclass(cls, bool):
        encoder = _typed(bool)
    elif issubclass(cls, int):
        encoder = _typed(int)
    elif issubclass(cls, float):
        encoder = _typed(float)
    elif issubclass(cls, str):
        encoder = _typed(str)
    elif issubclass(cls, bytes):
        encoder = _typed(bytes.hex)
    else:
        return _unencodable  # not remembered: a task type registered later may cover it
    _encoders[cls] = encoder
    return encoder


_encoders.update({
    type(None): _same, bool: _same, int: _same, str: _same, float: _same,
    list: _seq, FrozenList: _seq, tuple: _tuple, dict: _dict, FrozenDict: _dict,
    set: _set, frozenset: _set, FrozenSet: _set, bytes: _bytes,
})


def canonical_params(params: Mapping[str, Any],
                     field_encoders: Mapping[str, Callable[[Any], Any]] | None = None) -> dict[str, Any]:
    """Parameters in canonical form; ``field_encoders`` (from :func:`field_encoder`) by field name."""
    out = {}
    for name, value in params.items():
        encoder = field_encoders.get(name) if field_encoders else None
        try:
            out[name] = encode(value) if encoder is None else encoder(value)
        except RecursionError:
            exc = UnencodableValue(value, "the value is nested too deeply (or contains itself)")
            exc.path.insert(0, name)
            raise exc from None
        except UnencodableValue as exc:
            exc.path.insert(0, name)
            raise
    return out


def field_encoder(annotation: Any, depth: int = 0) -> Callable[[Any], Any] | None:
    """An encoder for a field declared as ``annotation``, or None when :func:`encode` does.

    Where the declared type makes a value a tuple or a set (pydantic converts
    what is passed), it needs no type tag: it is a plain (sorted) array, as ids
    had it before types were kept. Elsewhere (``Any``, unions) tuples and sets
    keep their tag, so ``(1, 2)`` and ``[1, 2]`` stay apart.
    """
    annotation = _declared(annotation)
    origin, args = typing.get_origin(annotation) or annotation, typing.get_args(annotation)
    if depth > 20:
        return None
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            inner = field_encoder(args[0], depth + 1) or encode
            return _as(tuple, lambda v: [inner(x) for x in v])
        encoders = [field_encoder(a, depth + 1) or encode for a in args]
        if not args or len(args) == 1 and args[0] == ():
            return _as(tuple, lambda v: [encode(x) for x in v])
        return _as(tuple, lambda v: [e(x) for e, x in zip(encoders, v)] if len(v) == len(encoders) else _seq(v))
    if origin in (set, frozenset):
        inner = field_encoder(args[0], depth + 1) if args else None
        if inner is None:
            return _as((set, frozenset, FrozenSet), _sorted_set)
        return _as((set, frozenset, FrozenSet), lambda v: sorted((inner(x) for x in v), key=_sort_key))
    if origin is list:
        inner = field_encoder(args[0], depth + 1) if args else None
        return None if inner is None else _as((list, FrozenList), lambda v: [inner(x) for x in v])
    if origin is dict and len(args) == 2 and args[0] is str:
        inner = field_encoder(args[1], depth + 1)
        if inner is None:
            return None

        def encode_dict(value: Any) -> Any:
            if type(value) in (dict, FrozenDict) and TAG not in value and TASK_REF not in value and all(
                    type(k) is str for k in value):
                return {k: inner(v) for k, v in value.items()}
            return encode(value)

        return encode_dict
    return None


def _declared(annotation: Any) -> Any:
    """``X`` for ``Optional[X]`` and ``Annotated[X, ...]`` (None stays distinct: it is ``null``)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Union or (_UnionType is not None and origin is _UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _as(types: Any, encoder: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``encoder`` for values of ``types`` (what validation makes), :func:`encode` for anything else."""
    types = types if isinstance(types, tuple) else (types,)

    def encode_declared(value: Any) -> Any:
        if type(value) not in types:
            return encode(value)
        try:
            return encoder(value)
        except UnencodableValue as exc:
            raise _locate(enumerate(value), exc) from None

    return encode_declared


def make_task_id(namespace: str, name: str, version: str, params: dict[str, Any]) -> str:
    """Hash of namespace, qualified class name, version and canonical parameters (32 hex digits)."""
    payload = dumps({"namespace": namespace, "name": name, "version": version, "params": params})
    return hashlib.sha256(payload.encode("ascii")).hexdigest()[:32]


# -- freezing ------------------------------------------------------------------

# type -> None (immutable: kept as is) or a function making an immutable copy.
_freezers: dict[type, Any] = {t: None for t in (type(None), bool, int, float, str, bytes, frozenset,
                                                FrozenList, FrozenDict, FrozenSet)}


def freeze(value: Any, mutable_models: list[Any]) -> Any:
    """``value`` with every list, dict and set inside made immutable (the same object if none).

    A pydantic model is copied (with frozen contents) unless it is immutable
    already, so the caller's object is never shared; a copy whose class is not
    frozen can still be changed in place, so it is appended to ``mutable_models``.
    """
    freezer = _freezers.get(type(value), _freeze_unknown)
    if freezer is _freeze_unknown:
        freezer = _classify_freezer(type(value))
    return value if freezer is None else freezer(value, mutable_models)


def _freeze_tuple(value: tuple, mutable_models: list[Any]) -> tuple:
    items = [freeze(v, mutable_models) for v in value]
    for a, b in zip(items, value):
        if a is not b:
            return type(value)(items) if type(value) is tuple else type(value)._make(items)
    return value


def _freeze_list(value: list, mutable_models: list[Any]) -> FrozenList:
    return FrozenList([freeze(v, mutable_models) for v in value])


def _freeze_dict(value: dict, mutable_models: list[Any]) -> FrozenDict:
    return FrozenDict({k: freeze(v, mutable_models) for k, v in value.items()})  # keys are hashable: immutable


def _freeze_set(value: set, mutable_models: list[Any]) -> FrozenSet:
    return FrozenSet(value)  # members are hashable: immutable


def _freeze_model(value: Any, mutable_models: list[Any]) -> Any:
    fields = value.__dict__
    frozen = {name: freeze(v, mutable_models) for name, v in fields.items()}
    extra = value.__pydantic_extra__
    frozen_extra = {name: freeze(v, mutable_models) for name, v in extra.items()} if extra else None
    immutable_class = bool(type(value).model_config.get("frozen", False))
    if immutable_class and all(frozen[name] is v for name, v in fields.items()) and (
            not extra or all(frozen_extra[name] is v for name, v in extra.items())):  # type: ignore[index]
        return value
    copy = value.__copy__()
    copy.__dict__.update(frozen)
    if frozen_extra:
        copy.__pydantic_extra__.update(frozen_extra)
    if not immutable_class:
        mutable_models.append(copy)
    return copy


def _freeze_unknown(value: Any, mutable_models: list[Any]) -> Any:
    raise AssertionError("a sentinel, never called")


def _classify_freezer(cls: type) -> Any:
    if _task_types and issubclass(cls, _task_types):
        freezer = None
    elif cls is tuple or (issubclass(cls, tuple) and hasattr(cls, "_make")):
        freezer = _freeze_tuple
    elif cls is list:
        freezer = _freeze_list
    elif cls is dict:
        freezer = _freeze_dict
    elif cls is set:
        freezer = _freeze_set
    elif is_model_class(cls):
        freezer = _freeze_model
    else:
        freezer = None  # immutable, or refused by its encoder
    _freezers[cls] = freezer
    return freezer


def map_tasks(value: Any, replace: Callable[[Any], Any], task_type: type) -> Any:
    """Return ``value`` with every task inside tuples, lists and dicts replaced (their types kept)."""
    if isinstance(value, task_type):
        return replace(value)
    if isinstance(value, (tuple, list)):
        return type(value)([map_tasks(v, replace, task_type) for v in value])
    if isinstance(value, dict):
        mapped = {k: map_tasks(v, replace, task_type) for k, v in value.items()}
        return mapped if type(value) is dict else type(value)(mapped)
    return value
