"""The default indicator set per (symbol, interval): parameters, values, exact state, splits."""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from analytics.indicators.bollinger import Bollinger
from analytics.indicators.ema import EMA
from analytics.indicators.macd import MACD
from analytics.indicators.rsi import RSI
from analytics.indicators.sma import SMA
from analytics.indicators.volatility import Volatility

# 2: lists (IndicatorSet.to_state); 1: objects keyed by name (still read).
STATE_VERSION = 2
_INF = math.inf
# What a three-valued indicator (MACD, Bollinger) gives during its warm-up.
_NOTHING = (None, None, None)
_new_tuple = tuple.__new__
# The parts in the order of a version 2 state (the keys of a version 1 state).
_PART_NAMES = (
    "sma_fast",
    "sma_slow",
    "ema_fast",
    "ema_slow",
    "rsi",
    "macd",
    "bollinger",
    "volatility",
)


@dataclass(frozen=True)
class IndicatorParams:
    """Periods of the set (stored in `indicator_params`)."""

    sma_fast: int = 20
    sma_slow: int = 50
    ema_fast: int = 12
    ema_slow: int = 26
    rsi: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bb_period: int = 20
    bb_k: float = 2.0
    volatility: int = 20

    def to_json(self) -> dict[str, int | float]:
        # Every saved state holds its params: asdict per save was a third of encoding a state.
        return dict(_params_json(self))


_params_json = functools.cache(asdict)


class IndicatorValues(NamedTuple):
    """One bar's values; each is None during its own warm-up."""

    sma_fast: float | None
    sma_slow: float | None
    ema_fast: float | None
    ema_slow: float | None
    rsi: float | None
    macd: float | None
    macd_signal: float | None
    macd_hist: float | None
    bb_lower: float | None
    bb_middle: float | None
    bb_upper: float | None
    volatility: float | None

    def get(self, name: str, default: float | None = None) -> float | None:
        """A value by column name, like a mapping (the alert rules read columns by name
        without turning every bar's values into a dict)."""
        return getattr(self, name, default)


class IndicatorSet:
    """All indicators of one series, updated together once per closed bar."""

    def __init__(self, params: IndicatorParams, annualization: float) -> None:
        self.params = params
        self.annualization = annualization
        # With the default periods SMA(20) is Bollinger's middle band (the same compensated sum,
        # so bit for bit) and EMA(26) is MACD's slow EMA: computing them once saves ~20% per bar.
        self.sma_fast: SMA | None = (
            None if params.sma_fast == params.bb_period else SMA(params.sma_fast)
        )
        self.sma_slow = SMA(params.sma_slow)
        self.ema_fast = EMA(params.ema_fast)
        self.ema_slow: EMA | None = (
            None if params.ema_slow == params.macd_slow else EMA(params.ema_slow)
        )
        self.rsi = RSI(params.rsi)
        self.macd = MACD(params.macd_fast, params.macd_slow, params.macd_signal)
        self.bollinger = Bollinger(params.bb_period, params.bb_k)
        self.volatility = Volatility(params.volatility, annualization)

    def update(self, close: float) -> IndicatorValues:
        """Feed one close (finite and > 0, else ValueError before any state changes)."""
        if not close > 0.0 or close == _INF:
            # Checked up front so a bad close leaves every indicator untouched.
            raise ValueError(f"close must be finite and > 0, got {close!r}")
        macd, signal, hist = self.macd.update(close) or _NOTHING
        lower, middle, upper = self.bollinger.update(close) or _NOTHING
        sma_fast = middle if self.sma_fast is None else self.sma_fast.update(close)
        if self.ema_slow is None:
            ema_slow = self.macd.slow_ema.value
        else:
            ema_slow = self.ema_slow.update(close)
        # tuple.__new__, not IndicatorValues(...): namedtuple's generated __new__ is one more
        # frame a bar (0.40 against 0.17 µs).
        return _new_tuple(
            IndicatorValues,
            (
                sma_fast,
                self.sma_slow.update(close),
                self.ema_fast.update(close),
                ema_slow,
                self.rsi.update(close),
                macd,
                signal,
                hist,
                lower,
                middle,
                upper,
                self.volatility.update(close),
            ),
        )

    def rescale(self, ratio: float) -> None:
        """Apply a split of `ratio` new shares per old: prices move to price / ratio."""
        if not ratio > 0.0 or ratio == float("inf"):
            raise ValueError(f"split ratio must be finite and > 0, got {ratio!r}")
        factor = 1.0 / ratio
        for indicator in self._parts().values():
            indicator.rescale(factor)

    def _parts(self) -> dict[str, Any]:
        parts = [(name, getattr(self, name)) for name in _PART_NAMES]
        return {name: part for name, part in parts if part is not None}

    def to_state(self) -> list[Any]:
        """JSON-serializable exact state (floats round-trip exactly through JSON): version 2,
        a list [2, params, annualization, sma_fast, sma_slow, ema_fast, ema_slow, rsi, macd,
        bollinger, volatility] of the parts' own lists (None for a part shared with another).
        Version 1 was objects keyed by name: at one state saved per bar of a live series,
        building those dicts was most of packing a state, and the names ~15% of its bytes."""
        return [
            STATE_VERSION,
            self.params.to_json(),
            self.annualization,
            None if self.sma_fast is None else self.sma_fast.to_state(),
            self.sma_slow.to_state(),
            self.ema_fast.to_state(),
            None if self.ema_slow is None else self.ema_slow.to_state(),
            self.rsi.to_state(),
            self.macd.to_state(),
            self.bollinger.to_state(),
            self.volatility.to_state(),
        ]

    @classmethod
    def from_state(cls, state: list[Any] | dict[str, Any]) -> IndicatorSet:
        """As to_state writes it, or version 1 (an object keyed by the parts' names)."""
        if isinstance(state, dict):
            if state.get("version") != 1:
                raise ValueError(f"unknown indicator state version {state.get('version')!r}")
            parts = [state.get(name) for name in _PART_NAMES]  # a shared part has no key
            state = [1, state["params"], state["annualization"], *parts]
        elif not state or state[0] != STATE_VERSION:
            raise ValueError(f"unknown indicator state version {state[:1]!r}")
        _, params, annualization, sma_fast, sma_slow, ema_fast, ema_slow, *rest = state
        rsi, macd, bollinger, volatility = rest
        made = cls(IndicatorParams(**params), annualization)
        if made.sma_fast is not None:
            made.sma_fast = SMA.from_state(sma_fast)
        made.sma_slow = SMA.from_state(sma_slow)
        made.ema_fast = EMA.from_state(ema_fast)
        if made.ema_slow is not None:
            made.ema_slow = EMA.from_state(ema_slow)
        made.rsi = RSI.from_state(rsi)
        made.macd = MACD.from_state(macd)
        made.bollinger = Bollinger.from_state(bollinger)
        made.volatility = Volatility.from_state(volatility)
        return made
