"""What a rule measures on one bar (value, fire level, resolve level) and how a message says it."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import islice
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


# One rule's comparison on one bar: (value, fire level, resolve level). The value is compared
# with the fire level (by the rule's op) while the machine is quiet, with the resolve level (by
# resolve_op) while it fires. Numbers only: the words of a message (`labels`) are made only for
# a bar that changes a machine's state. A plain tuple: one is made per rule and bar.
Reading = tuple[float, float, float]
# A rule's reading of a bar from (the series' alert state, close, volume, indicator values);
# None when an input is missing (warm-up, too few previous bars on the current basis): then the
# machine stays as it is.
Probe = Callable[[AlertState, float, int, IndicatorValues], "Reading | None"]
_INDEX = {name: index for index, name in enumerate(IndicatorValues._fields)}


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


def read_forecast(rule: Rule, close: float, lo95: float, hi95: float) -> Reading:
    edge = hi95 if rule.parameters["side"] == "upper" else lo95
    return _relative(rule, close, edge, hi95 - lo95)


def _relative(rule: Rule, value: float, edge: float, unit: float) -> Reading:
    return _beside(value, edge, unit, _width(rule), rule.upward)


def _beside(value: float, edge: float, unit: float, width: float, upward: bool) -> Reading:
    """A level that is another series (`edge`): the resolve level lies `width` × `unit` back on
    the safe side of it."""
    if width == 0.0:
        return (value, edge, edge)
    shift = width * unit
    return (value, edge, edge - shift if upward else edge + shift)


def _width(rule: Rule) -> float:
    p = rule.parameters
    return p.get("hysteresis_width", p.get("hysteresis_pct", 0.0))


def probe(rule: Rule) -> Probe:
    """The rule's reading of a bar as one function specialised to its parameters (the engine
    makes it once per rule content: every rule is read on every bar). Not for forecast_breach
    (`read_forecast`)."""
    p = rule.parameters
    kind = rule.kind
    if kind == "level":
        threshold, resolve = p["threshold"], p["resolve"]
        if p["indicator"] == "close":

            def level_of_close(
                state: AlertState, close: float, volume: int, values: IndicatorValues
            ) -> Reading | None:
                return (close, threshold, resolve)

            return level_of_close
        index = _INDEX[p["indicator"]]

        def level(
            state: AlertState, close: float, volume: int, values: IndicatorValues
        ) -> Reading | None:
            value = values[index]
            return None if value is None else (value, threshold, resolve)

        return level
    if kind == "band":
        upper_side = p["side"] == "upper"
        width, upward = _width(rule), rule.upward
        upper_at, lower_at = _INDEX["bb_upper"], _INDEX["bb_lower"]

        def band(
            state: AlertState, close: float, volume: int, values: IndicatorValues
        ) -> Reading | None:
            upper, lower = values[upper_at], values[lower_at]
            if upper is None or lower is None:
                return None
            return _beside(close, upper if upper_side else lower, upper - lower, width, upward)

        return band
    if kind == "crossing":
        subject, reference = _field(p["indicator"]), _field(p["reference"])
        width, upward = _width(rule), rule.upward

        def crossing(
            state: AlertState, close: float, volume: int, values: IndicatorValues
        ) -> Reading | None:
            a = close if subject is None else values[subject]
            b = close if reference is None else values[reference]
            if a is None or b is None:
                return None
            return _beside(a, b, close / 100.0, width, upward)

        return crossing
    if kind == "pct_change":
        k, threshold, resolve = p["bars"], p["threshold"], p["resolve"]

        def pct_change(
            state: AlertState, close: float, volume: int, values: IndicatorValues
        ) -> Reading | None:
            # Only a window wholly on the current basis: a comparison across a split is skipped.
            closes = state.closes
            if state.basis_bars < k or len(closes) < k:
                return None
            return ((close / closes[-k] - 1.0) * 100.0, threshold, resolve)

        return pct_change
    if kind == "volume_spike":
        n, threshold, resolve = p["bars"], p["threshold"], p["resolve"]

        def volume_spike(
            state: AlertState, close: float, volume: int, values: IndicatorValues
        ) -> Reading | None:
            volumes = state.volumes
            if len(volumes) < n:
                return None
            # The previous n bars (the current one is excluded), summed exactly.
            mean = math.fsum(islice(volumes, len(volumes) - n, None)) / n
            if not mean > 0.0:
                return None  # no traded volume to compare with (e.g. an FX pair reports 0)
            return (volume / mean, threshold, resolve)

        return volume_spike
    raise ValueError(f"rule {rule.id!r}: kind {rule.kind!r} is not read from a bar's facts")


def _field(name: str) -> int | None:
    """The index of an indicator column in IndicatorValues; None for close."""
    return None if name == "close" else _INDEX[name]


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
