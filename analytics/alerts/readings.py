"""What a rule measures on one bar (value, fire level, resolve level) and how a message says it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

from analytics.alerts.rules import Rule
from analytics.alerts.state import AlertState

LABELS = {
    "close": "close",
    "sma_fast": "SMA fast",
    "sma_slow": "SMA slow",
    "ema_fast": "EMA fast",
    "ema_slow": "EMA slow",
    "rsi": "RSI",
    "macd": "MACD",
    "macd_signal": "MACD signal",
    "macd_hist": "MACD histogram",
    "bb_lower": "Bollinger lower",
    "bb_middle": "Bollinger middle",
    "bb_upper": "Bollinger upper",
    "volatility": "volatility",
}


class Reading(NamedTuple):
    """One rule's comparison on one bar: `value` against `fire_at` (with op) while the machine
    is quiet, against `resolve_at` (with resolve_op) while it fires."""

    value: float
    fire_at: float
    resolve_at: float
    subject: str  # what `value` is, for the message ("RSI", "close")
    reference: str = ""  # what the levels are when they are not plain numbers ("Bollinger upper")
    resolve_reference: str = ""
    unit: str = ""  # "%" (signed percent), "x" (multiple) or "" (plain number)

    def text(self, x: float) -> str:
        if self.unit == "%":
            return f"{'+' if x >= 0 else ''}{number_text(x)}%"
        return f"{number_text(x)}{self.unit}"


def number_text(x: float) -> str:
    """70.0 -> "70", 72.3145 -> "72.31", 0.012345 -> "0.01235"."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return f"{x:.0f}"
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.4g}"


def read(
    rule: Rule,
    state: AlertState,
    close: float,
    volume: int,
    indicators: Mapping[str, float | None],
) -> Reading | None:
    """The rule's reading of this bar, None when an input is missing (warm-up, too few previous
    bars on the current basis): then the machine stays as it is. Not for forecast_breach."""
    p = rule.parameters
    if rule.kind == "level":
        value = close if p["indicator"] == "close" else indicators.get(p["indicator"])
        if value is None:
            return None
        return Reading(value, p["threshold"], p["resolve"], LABELS[p["indicator"]])
    if rule.kind == "band":
        upper, lower = indicators.get("bb_upper"), indicators.get("bb_lower")
        if upper is None or lower is None:
            return None
        edge = upper if p["side"] == "upper" else lower
        return _relative(
            rule, close, edge, upper - lower, "close", f"Bollinger {p['side']}", "band width"
        )
    if rule.kind == "crossing":
        a = close if p["indicator"] == "close" else indicators.get(p["indicator"])
        b = close if p["reference"] == "close" else indicators.get(p["reference"])
        if a is None or b is None:
            return None
        return _relative(
            rule, a, b, close / 100.0, LABELS[p["indicator"]], LABELS[p["reference"]], "% of close"
        )
    if rule.kind == "pct_change":
        k = p["bars"]
        # Only a window wholly on the current basis: a comparison across a split is skipped.
        if state.basis_bars < k or len(state.closes) < k:
            return None
        change = (close / state.closes[-k] - 1.0) * 100.0
        subject = f"close change over {k} bar{'s' if k > 1 else ''}"
        return Reading(change, p["threshold"], p["resolve"], subject, unit="%")
    if rule.kind == "volume_spike":
        n = p["bars"]
        if len(state.volumes) < n:
            return None
        previous = list(state.volumes)[-n:]  # the previous n bars: the current one is excluded
        mean = math.fsum(previous) / n
        if not mean > 0.0:
            return None  # no traded volume to compare with (e.g. an FX pair reports 0)
        subject = f"volume / {n}-bar average"
        return Reading(volume / mean, p["threshold"], p["resolve"], subject, unit="x")
    raise ValueError(f"rule {rule.id!r}: kind {rule.kind!r} is not read from a bar's facts")


def read_forecast(rule: Rule, close: float, lo95: float, hi95: float) -> Reading:
    p = rule.parameters
    edge = hi95 if p["side"] == "upper" else lo95
    return _relative(
        rule, close, edge, hi95 - lo95, "close", f"forecast 95% {p['side']}", "interval width"
    )


def _relative(
    rule: Rule, value: float, edge: float, unit: float, subject: str, name: str, unit_name: str
) -> Reading:
    """A level that is another series (`edge`): the resolve level lies `hysteresis` × `unit`
    back on the safe side of it."""
    p = rule.parameters
    width = p.get("hysteresis_width", p.get("hysteresis_pct", 0.0))
    if width == 0.0:
        return Reading(value, edge, edge, subject, f"{name} ", f"{name} ")
    shift = width * unit
    back = f"{name} {'-' if rule.upward else '+'} {width:g}{'' if '%' in unit_name else ' x'}"
    return Reading(
        value,
        edge,
        edge - shift if rule.upward else edge + shift,
        subject,
        f"{name} ",
        f"{back} {unit_name} = ",
    )
