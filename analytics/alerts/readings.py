"""What a rule measures on one bar (value, fire level, resolve level) and how a message says it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

from analytics.alerts.rules import Rule
from analytics.alerts.state import AlertState
from analytics.indicators import IndicatorValues

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
    is quiet, against `resolve_at` (with resolve_op) while it fires. Numbers only: the words of
    a message (`labels`) are made only for a bar that changes a machine's state."""

    value: float
    fire_at: float
    resolve_at: float


class Labels(NamedTuple):
    """How a message names a rule's reading (depends on the rule alone)."""

    subject: str  # what the value is ("RSI", "close")
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
    indicators: Mapping[str, float | None] | IndicatorValues,
) -> Reading | None:
    """The rule's reading of this bar, None when an input is missing (warm-up, too few previous
    bars on the current basis): then the machine stays as it is. Not for forecast_breach.
    Evaluated for every rule on every bar: numbers only, nothing formatted."""
    p = rule.parameters
    kind = rule.kind
    if kind == "level":
        value = close if p["indicator"] == "close" else indicators.get(p["indicator"])
        if value is None:
            return None
        return Reading(value, p["threshold"], p["resolve"])
    if kind == "band":
        upper, lower = indicators.get("bb_upper"), indicators.get("bb_lower")
        if upper is None or lower is None:
            return None
        return _relative(rule, close, upper if p["side"] == "upper" else lower, upper - lower)
    if kind == "crossing":
        a = close if p["indicator"] == "close" else indicators.get(p["indicator"])
        b = close if p["reference"] == "close" else indicators.get(p["reference"])
        if a is None or b is None:
            return None
        return _relative(rule, a, b, close / 100.0)
    if kind == "pct_change":
        k = p["bars"]
        # Only a window wholly on the current basis: a comparison across a split is skipped.
        if state.basis_bars < k or len(state.closes) < k:
            return None
        return Reading((close / state.closes[-k] - 1.0) * 100.0, p["threshold"], p["resolve"])
    if kind == "volume_spike":
        n = p["bars"]
        volumes = state.volumes
        if len(volumes) < n:
            return None
        # The previous n bars (the current one is excluded), summed exactly.
        mean = math.fsum(volumes[i] for i in range(len(volumes) - n, len(volumes))) / n
        if not mean > 0.0:
            return None  # no traded volume to compare with (e.g. an FX pair reports 0)
        return Reading(volume / mean, p["threshold"], p["resolve"])
    raise ValueError(f"rule {rule.id!r}: kind {rule.kind!r} is not read from a bar's facts")


def read_forecast(rule: Rule, close: float, lo95: float, hi95: float) -> Reading:
    edge = hi95 if rule.parameters["side"] == "upper" else lo95
    return _relative(rule, close, edge, hi95 - lo95)


def _relative(rule: Rule, value: float, edge: float, unit: float) -> Reading:
    """A level that is another series (`edge`): the resolve level lies `hysteresis` × `unit`
    back on the safe side of it."""
    p = rule.parameters
    width = p.get("hysteresis_width", p.get("hysteresis_pct", 0.0))
    if width == 0.0:
        return Reading(value, edge, edge)
    shift = width * unit
    return Reading(value, edge, edge - shift if rule.upward else edge + shift)


# Per rule content (id and digest): a reloaded rule with other parameters gets its own.
_LABELS: dict[tuple[str, str], Labels] = {}


def labels(rule: Rule) -> Labels:
    """The words of `rule`'s messages (made once per rule)."""
    found = _LABELS.get((rule.id, rule.digest))
    if found is None:
        found = _LABELS[(rule.id, rule.digest)] = _make_labels(rule)
    return found


def _make_labels(rule: Rule) -> Labels:
    p = rule.parameters
    if rule.kind == "level":
        return Labels(LABELS[p["indicator"]])
    if rule.kind == "band":
        return _relative_labels(rule, "close", f"Bollinger {p['side']}", "band width")
    if rule.kind == "crossing":
        subject, name = LABELS[p["indicator"]], LABELS[p["reference"]]
        return _relative_labels(rule, subject, name, "% of close")
    if rule.kind == "pct_change":
        k = p["bars"]
        return Labels(f"close change over {k} bar{'s' if k > 1 else ''}", unit="%")
    if rule.kind == "volume_spike":
        return Labels(f"volume / {p['bars']}-bar average", unit="x")
    if rule.kind == "forecast_breach":
        return _relative_labels(rule, "close", f"forecast 95% {p['side']}", "interval width")
    raise ValueError(f"rule {rule.id!r}: unknown kind {rule.kind!r}")


def _relative_labels(rule: Rule, subject: str, name: str, unit_name: str) -> Labels:
    width = rule.parameters.get("hysteresis_width", rule.parameters.get("hysteresis_pct", 0.0))
    if width == 0.0:
        return Labels(subject, f"{name} ", f"{name} ")
    back = f"{name} {'-' if rule.upward else '+'} {width:g}{'' if '%' in unit_name else ' x'}"
    return Labels(subject, f"{name} ", f"{back} {unit_name} = ")
