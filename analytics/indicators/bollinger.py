"""Bollinger bands: SMA(n) ± k population standard deviations (TA-Lib BBANDS, matype 0)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from analytics.indicators.rolling import RollingWindow, not_finite

_new_tuple = tuple.__new__


class BollingerValue(NamedTuple):
    lower: float
    middle: float
    upper: float


class Bollinger:
    """Bollinger(period, k) with the POPULATION stdev (ddof = 0), as TA-Lib and StockCharts.

    Warm-up: period - 1 bars. Variance = mean of squares - square of mean (TA-Lib's formula) from
    compensated sums, recomputed exactly for near-flat windows so a flat series has width 0.
    """

    __slots__ = ("period", "k", "warmup", "_window")

    def __init__(self, period: int = 20, k: float = 2.0) -> None:
        self.period = period
        self.k = k
        self.warmup = period - 1
        self._window = RollingWindow(period, squares=True)

    def update(self, x: float) -> BollingerValue | None:
        """Feed one close; the bands once `period` values were seen, else None."""
        window = self._window
        if x - x != 0.0:
            raise not_finite(x)
        if not window.push(x):
            return None
        n = self.period
        mean = (window.s + window.c) / n
        width = self.k * math.sqrt(window.variance(ddof=0))
        return _new_tuple(BollingerValue, (mean - width, mean, mean + width))  # see macd.py

    def rescale(self, factor: float) -> None:
        self._window.scale(factor)

    def to_state(self) -> list[Any]:
        """[k, window] (the window holds the period)."""
        return [self.k, self._window.to_state()]

    @classmethod
    def from_state(cls, state: list[Any] | dict[str, Any]) -> Bollinger:
        """As to_state writes it, or the object of version 1."""
        if isinstance(state, dict):
            state = [state["k"], state["window"]]
        k, window_state = state
        window = RollingWindow.from_state(window_state)
        bands = cls(window.period, k)
        bands._window = window
        return bands
