"""Copies of indicator state that share nothing mutable (a batch is processed on copies).

The indicators are slotted objects whose fields are numbers (or None), deques of floats and
other indicators; the set of which field holds what is fixed in `__init__`. A copier per class,
built on first use, copies exactly that: ~6x faster than copy.deepcopy, which matters because
every series a batch touches is copied once per batch (at a steady rate of a few bars per series
per second, once per bar: the copy was a sixth of the analytics consumer's CPU).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")
_COPIERS: dict[type, Callable[[Any], Any]] = {}
_INDICATOR_TYPES: dict[type, bool] = {}


def independent_copy(obj: T) -> T:
    copier = _COPIERS.get(type(obj))
    if copier is None:
        copier = _COPIERS[type(obj)] = _build_copier(obj)
    return copier(obj)


def _is_indicator(value: Any) -> bool:
    # Parameters (frozen dataclasses) are immutable and shared; everything else of ours is state.
    kind = type(value)
    found = _INDICATOR_TYPES.get(kind)
    if found is None:
        found = _INDICATOR_TYPES[kind] = kind.__module__.startswith(
            "analytics.indicators."
        ) and not is_dataclass(kind)
    return found


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

    # The copier is compiled for the class, one assignment per slot: a loop of getattr/setattr
    # by name cost twice as much. The names are the class's own __slots__ (identifiers).
    lines = ["def copy_slotted(o):", "    new = new_object(cls)"]
    lines += [f"    new.{name} = o.{name}" for name in plain]
    # deque.copy keeps maxlen; floats are immutable.
    lines += [f"    new.{name} = o.{name}.copy()" for name in deques]
    lines += [f"    new.{name} = independent_copy(o.{name})" for name in nested]
    lines.append("    return new")
    namespace = {"new_object": object.__new__, "cls": cls, "independent_copy": independent_copy}
    exec("\n".join(lines), namespace)  # noqa: S102 (our own slot names, see above)
    return namespace["copy_slotted"]
