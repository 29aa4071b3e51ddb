"""What each field of an alert rule may hold: one checker per field, one field table per kind."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any

from analytics.indicators import IndicatorValues

OPERATORS = (">", ">=", "<", "<=")
UPWARD = frozenset({">", ">="})  # operators that fire above their threshold
SEVERITIES = ("info", "warning", "critical")
SIDES = ("upper", "lower")
# What `level` and `crossing` rules can read off a bar: its close and every indicator.
SOURCES = ("close", *IndicatorValues._fields)
MAX_BARS = 1000  # bounds the window of closes / volumes a series keeps for its rules


class Problem(ValueError):
    """One thing wrong with one rule (the text names the field, not the rule)."""


def hint(word: str, choices: tuple[str, ...] | frozenset[str]) -> str:
    """A ` (did you mean …?)` suffix when `word` is one or two letters off a known name."""
    same = [choice for choice in sorted(choices) if choice.lower() == word.lower()]
    close = same or difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def operator(name: str, value: Any) -> str:
    if value not in OPERATORS:
        raise Problem(f"unknown operator {value!r} in {name} (one of {', '.join(OPERATORS)})")
    return value


def number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Problem(f"{name} must be a finite number, got {value!r}")
    return float(value)


def hysteresis(name: str, value: Any) -> float:
    width = number(name, value)
    if width < 0.0:
        raise Problem(f"hysteresis on the wrong side: {name} must be >= 0, got {value!r}")
    return width


def bars(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BARS:
        raise Problem(f"{name} must be a whole number of bars from 1 to {MAX_BARS}, got {value!r}")
    return value


def source(name: str, value: Any) -> str:
    if value not in SOURCES:
        suffix = hint(value, SOURCES) if isinstance(value, str) else ""
        raise Problem(f"unknown indicator {value!r} in {name}{suffix}")
    return value


def side(name: str, value: Any) -> str:
    if value not in SIDES:
        raise Problem(f"{name} must be 'upper' or 'lower', got {value!r}")
    return value


Checker = Callable[[str, Any], Any]
_THRESHOLDS: dict[str, Checker] = {
    "op": operator,
    "threshold": number,
    "resolve_op": operator,
    "resolve": number,
}
_RELATIVE: dict[str, Checker] = {"op": operator, "resolve_op": operator}
# Every field listed is required; `cooldown_bars` and `description` (common) are optional.
KIND_FIELDS: dict[str, dict[str, Checker]] = {
    "level": {"indicator": source, **_THRESHOLDS},
    "band": {"side": side, **_RELATIVE, "hysteresis_width": hysteresis},
    "crossing": {
        "indicator": source,
        "reference": source,
        **_RELATIVE,
        "hysteresis_pct": hysteresis,
    },
    "pct_change": {"bars": bars, **_THRESHOLDS},
    "volume_spike": {"bars": bars, **_THRESHOLDS},
    "forecast_breach": {"side": side, **_RELATIVE, "hysteresis_width": hysteresis},
}
KINDS = tuple(KIND_FIELDS)


def check_sides(kind: str, p: dict[str, Any]) -> None:
    """The fire and resolve comparisons must point opposite ways and never overlap."""
    op, resolve_op = p["op"], p["resolve_op"]
    up = op in UPWARD
    if "side" in p and up != (p["side"] == "upper"):
        fits = "> or >=" if p["side"] == "upper" else "< or <="
        raise Problem(f"op {op!r} does not fit side {p['side']!r} (use {fits})")
    if (resolve_op in UPWARD) == up:
        raise Problem(
            f"resolve_op {resolve_op!r} points the same way as op {op!r} "
            "(it must point back to the safe side)"
        )
    if kind == "crossing" and p["indicator"] == p["reference"]:
        raise Problem(f"indicator and reference are both {p['indicator']!r}")
    both_inclusive = op.endswith("=") and resolve_op.endswith("=")
    if "threshold" in p:
        threshold, resolve = p["threshold"], p["resolve"]
        if (resolve > threshold) if up else (resolve < threshold):
            where = "above" if up else "below"
            raise Problem(
                f"hysteresis on the wrong side: resolve {resolve:g} is {where} "
                f"threshold {threshold:g} (op {op!r})"
            )
        if resolve == threshold and both_inclusive:
            raise Problem(
                f"resolve equals threshold {threshold:g} and both {op!r} and {resolve_op!r} "
                "include it: that value would fire and resolve at once"
            )
    else:
        width = p.get("hysteresis_width", p.get("hysteresis_pct"))
        if width == 0.0 and both_inclusive:
            raise Problem(
                f"with no hysteresis, op {op!r} and resolve_op {resolve_op!r} cannot both be "
                "inclusive: a value on the line would fire and resolve at once"
            )
