"""Wilder's RSI (SMA-seeded averages), as TA-Lib computes it, except a flat series gives 50."""

from __future__ import annotations

from typing import Any

from analytics.indicators.rolling import not_finite


class RSI:
    """Wilder RSI(period): averages seeded by the mean of the first `period` changes, then
    avg = (avg * (period - 1) + x) / period.

    Warm-up: `period` bars (period changes need period + 1 closes). One deliberate difference from
    TA-Lib: with no gains and no losses (a halted stock) the RSI is 50, not TA-Lib's 0, which would
    read as "oversold".
    """

    __slots__ = ("period", "warmup", "_prev", "_count", "_gain", "_loss")

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}")
        self.period = period
        self.warmup = period
        self._prev: float | None = None
        self._count = 0
        self._gain = 0.0
        self._loss = 0.0

    def update(self, x: float) -> float | None:
        """Feed one close; the RSI once `period` changes were seen, else None."""
        if x - x != 0.0:
            raise not_finite(x)
        prev = self._prev
        self._prev = x
        if prev is None:
            return None
        change = x - prev
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        n = self.period
        if self._count < n:
            self._count += 1
            self._gain += gain
            self._loss += loss
            if self._count < n:
                return None
            self._gain /= n
            self._loss /= n
        else:
            # TA-Lib's order of operations: multiply by (n - 1), add, divide by n.
            self._gain = (self._gain * (n - 1) + gain) / n
            self._loss = (self._loss * (n - 1) + loss) / n
        total = self._gain + self._loss
        if total == 0.0:
            return 50.0
        return 100.0 * (self._gain / total)

    def rescale(self, factor: float) -> None:
        """Averages are in price units and scale; the RSI, a ratio, does not change."""
        self._gain *= factor
        self._loss *= factor
        if self._prev is not None:
            self._prev *= factor

    def to_state(self) -> list[Any]:
        """[period, prev, count, gain, loss]."""
        return [self.period, self._prev, self._count, self._gain, self._loss]

    @classmethod
    def from_state(cls, state: list[Any] | dict[str, Any]) -> RSI:
        """As to_state writes it, or the object of version 1."""
        if isinstance(state, dict):
            names = ("period", "prev", "count", "gain", "loss")
            state = [state[name] for name in names]
        period, prev, count, gain, loss = state
        rsi = cls(period)
        rsi._prev = prev
        rsi._count = count
        rsi._gain = gain
        rsi._loss = loss
        return rsi
