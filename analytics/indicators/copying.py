"""Copies of indicator state that share nothing mutable (a batch is processed on copies).

The indicators are slotted objects whose fields are numbers (or None), deques of floats and
other indicators; the set of which field holds what is fixed in `__init__`. A copier per class,
built on first use, copies exactly that: ~6x faster than copy.deepcopy, which matters because
every series a batch touches is copied once per batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")
_COPIERS: dict[type, Callable[[Any], Any]] = {}


def independent_copy(obj: T) -> T:
    copier = _COPIERS.get(type(obj))
    if copier is None:
        copier = _COPIERS[type(obj)] = _build_copier(obj)
    return copier(obj)


def _is_indicator(value: Any) -> bool:
    # Parameters (frozen dataclasses) are immutable and shared; everything else of ours is state.
    kind = type(value)
    return kind.__module__.startswith("analytics.indicators.") and not is_dataclass(kind)


def _build_copier(obj: Any) -> Callable[[Any], Any]:
    cls = type(obj)
    if hasattr(obj, "__dict__"):
        # A plain object (IndicatorSet): few fields, some of which may be None by design.
        def copy_plain(o: Any) -> Any:
            new = cls.__new__(cls)
            new.__dict__.update(
                {
                    name: independent_copy(v) if _is_indicator(v) else v
                    for name, v in o.__dict__.items()
                }
            )
            return new

        return copy_plain
    slots = [name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ())]
    deques = [name for name in slots if type(getattr(obj, name)) is deque]
    nested = [name for name in slots if _is_indicator(getattr(obj, name))]
    plain = [name for name in slots if name not in deques and name not in nested]

    def copy_slotted(o: Any) -> Any:
        new = cls.__new__(cls)
        for name in plain:
            setattr(new, name, getattr(o, name))
        for name in deques:
            setattr(new, name, getattr(o, name).copy())  # keeps maxlen; floats are immutable
        for name in nested:
            setattr(new, name, independent_copy(getattr(o, name)))
        return new

    return copy_slotted
