"""Immutable lists, dicts and sets: what a task's list, dict and set parameters become.

A task's id is computed once, from its parameters. Had they stayed mutable,
``task.items.append(3)`` would give a task whose id no longer matches its work.
These subclasses keep ``isinstance(x, list)`` (and dict, set), equality, JSON
and pydantic serialisation, and refuse every in-place change. Copy to change:
``list(task.items)``, or make a new task (``task.model_copy(update=...)``).
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["FrozenDict", "FrozenList", "FrozenSet"]


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(
        f"a task's parameters are immutable (this {type(self).__mro__[1].__name__} is part of a task's id): "
        f"copy it to change it, or make a new task with task.model_copy(update={{...}})"
    )


class FrozenList(list):
    """A list that cannot change."""

    __slots__ = ()

    def __new__(cls, items: Any = ()) -> FrozenList:
        self = list.__new__(cls)
        list.extend(self, items)
        return self

    def __init__(self, items: Any = ()) -> None:  # filled in __new__: no second fill
        pass

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse


class FrozenDict(dict):
    """A dict that cannot change."""

    __slots__ = ()

    def __new__(cls, items: Any = ()) -> FrozenDict:
        self = dict.__new__(cls)
        dict.update(self, items)
        return self

    def __init__(self, items: Any = ()) -> None:
        pass

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    pop = popitem = setdefault = update = clear = _refuse
    __setitem__ = __delitem__ = __ior__ = _refuse


class FrozenSet(set):
    """A set that cannot change (a ``frozenset`` would fail ``isinstance(x, set)``)."""

    __slots__ = ()

    def __new__(cls, items: Any = ()) -> FrozenSet:
        self = set.__new__(cls)
        set.update(self, items)
        return self

    def __init__(self, items: Any = ()) -> None:
        pass

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenSet, (set(self),))

    add = discard = remove = pop = clear = update = _refuse
    difference_update = intersection_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse
