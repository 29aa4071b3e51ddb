"""Exponential moving average with TA-Lib's seeding (the SMA of the first `period` values)."""

from __future__ import annotations

from typing import Any

from analytics.indicators.rolling import not_finite


class EMA:
    """EMA with k = 2 / (period + 1), seeded by the SMA of the first `period` values (TA-Lib).

    Warm-up: period - 1 bars (the first value, on bar `period`, is that SMA).
    """

    __slots__ = ("period", "warmup", "k", "_count", "_seed_sum", "value")

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}")
        self.period = period
        self.warmup = period - 1
        self.k = 2.0 / (period + 1)
        self._count = 0
        # The seed is summed once over `period` values: no running subtraction, so no drift.
        self._seed_sum = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        """Feed one value; the EMA once `period` values were seen, else None."""
        if x - x != 0.0:
            raise not_finite(x)
        value = self.value
        if value is not None:
            # TA-Lib's form: ((x - prev) * k) + prev.
            value = (x - value) * self.k + value
            self.value = value
            return value
        self._count += 1
        self._seed_sum += x
        if self._count == self.period:
            self.value = self._seed_sum / self.period
        return self.value

    def rescale(self, factor: float) -> None:
        self._seed_sum *= factor
        if self.value is not None:
            self.value *= factor

    def to_state(self) -> list[Any]:
        """[period, count, seed_sum, value]."""
        return [self.period, self._count, self._seed_sum, self.value]

    @classmethod
    def from_state(cls, state: list[Any] | dict[str, Any]) -> EMA:
        """As to_state writes it, or the object of version 1."""
        if isinstance(state, dict):
            state = [state["period"], state["count"], state["seed_sum"], state["value"]]
        period, count, seed_sum, value = state
        ema = cls(period)
        ema._count = count
        ema._seed_sum = seed_sum
        ema.value = value
        return ema
