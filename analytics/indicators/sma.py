"""Simple moving average over a drift-free rolling window."""

from __future__ import annotations

from typing import Any

from analytics.indicators.rolling import RollingWindow, not_finite


class SMA:
    """Mean of the last `period` values; warm-up: period - 1 bars (first value on bar `period`)."""

    __slots__ = ("period", "warmup", "_window")

    def __init__(self, period: int) -> None:
        self.period = period
        self.warmup = period - 1
        self._window = RollingWindow(period)

    def update(self, x: float) -> float | None:
        """Feed one value; the mean once `period` values were seen, else None."""
        if x - x != 0.0:
            raise not_finite(x)
        window = self._window
        if window.push(x):
            return (window.s + window.c) / self.period
        return None

    def rescale(self, factor: float) -> None:
        self._window.scale(factor)

    def to_state(self) -> list[Any]:
        """Its window's state (the window holds the period)."""
        return self._window.to_state()

    @classmethod
    def from_state(cls, state: list[Any] | dict[str, Any]) -> SMA:
        """As to_state writes it, or the object of version 1."""
        window = RollingWindow.from_state(state["window"] if isinstance(state, dict) else state)
        sma = cls(window.period)
        sma._window = window
        return sma
