"""Deterministic task ids: canonical JSON of a task's parameters, hashed.

A parameter that is a task contributes only its own ``task_id``, so hashing a
task costs O(its own parameters), however deep the graph above it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from pydantic_core import to_jsonable_python

__all__ = ["canonical_params", "make_task_id", "map_tasks"]

_TASK_REF = "__stardag_task_id__"


def map_tasks(value: Any, replace: Callable[[Any], Any], task_type: type) -> Any:
    """Return ``value`` with every task inside tuples, lists and dicts replaced."""
    if isinstance(value, task_type):
        return replace(value)
    if isinstance(value, (tuple, list)):
        return type(value)(map_tasks(v, replace, task_type) for v in value)
    if isinstance(value, dict):
        return {k: map_tasks(v, replace, task_type) for k, v in value.items()}
    return value


def _canonical(value: Any, task_type: type) -> Any:
    if isinstance(value, task_type):
        return {_TASK_REF: value.id}
    if isinstance(value, (tuple, list)):
        return [_canonical(v, task_type) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v, task_type) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        # Iteration order of a set of str depends on PYTHONHASHSEED: sort canonically.
        items = [_canonical(v, task_type) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return to_jsonable_python(value)


def canonical_params(params: dict[str, Any], task_type: type) -> dict[str, Any]:
    """Parameters as plain JSON values, tasks replaced by their ids."""
    return {name: _canonical(value, task_type) for name, value in params.items()}


def make_task_id(namespace: str, name: str, version: str, params: dict[str, Any]) -> str:
    """Hash of namespace, class name, version and canonical parameters (32 hex digits)."""
    payload = json.dumps(
        {"namespace": namespace, "name": name, "version": version, "params": params},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=True,
    )
    return hashlib.sha256(payload.encode("ascii")).hexdigest()[:32]
