"""Bollinger bands: SMA(n) ± k population standard deviations (TA-Lib BBANDS, matype 0)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from analytics.indicators.rolling import RollingWindow, not_finite


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
        return BollingerValue(mean - width, mean, mean + width)

    def rescale(self, factor: float) -> None:
        self._window.scale(factor)

    def to_state(self) -> dict[str, Any]:
        return {"period": self.period, "k": self.k, "window": self._window.to_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Bollinger:
        bands = cls(state["period"], state["k"])
        bands._window = RollingWindow.from_state(state["window"])
        return bands
