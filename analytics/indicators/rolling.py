"""Drift-free rolling window sums (Neumaier-compensated) shared by SMA, Bollinger and volatility."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

# Why a compensated sum: a running sum updated by +new and -old accumulates one rounding error
# per update, forever; with magnitudes from 1e-6 to 1e9 the naive sum drifts visibly within a
# million updates. Each addition's rounding error is captured exactly (TwoSum) into a running
# compensation (Neumaier's scheme), so sum + comp stays within a few ulp of the exact window sum at
# O(1) cost per update and with no periodic O(n) recomputation spikes; fsum over the window would
# be O(n) per update.


class RollingWindow:
    """The last `period` values with compensated sums of the values and (optionally) squares."""

    __slots__ = ("period", "values", "s", "c", "s2", "c2", "squares")

    def __init__(self, period: int, squares: bool = False) -> None:
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}")
        self.period = period
        self.squares = squares
        self.values: deque[float] = deque(maxlen=period)
        self.s = self.c = self.s2 = self.c2 = 0.0

    def push(self, x: float) -> bool:
        """Add x (dropping the oldest value once full); True when the window is full."""
        # Knuth's TwoSum, inlined (a helper call per add cost ~10% of the whole set's time):
        # t = s + x, and the rounding error of that addition, exact, goes into c. Branch-free,
        # so cheaper in Python than Neumaier's |s| >= |x| test, and the same error term.
        values = self.values
        full = len(values) == self.period
        s, c = self.s, self.c
        if full:
            old = -values[0]
            t = s + old
            b = t - s
            c += (s - (t - b)) + (old - b)
            s = t
        t = s + x
        b = t - s
        c += (s - (t - b)) + (x - b)
        self.s, self.c = t, c
        if self.squares:
            s, c = self.s2, self.c2
            if full:
                old = -values[0] * values[0]
                t = s + old
                b = t - s
                c += (s - (t - b)) + (old - b)
                s = t
            sq = x * x
            t = s + sq
            b = t - s
            c += (s - (t - b)) + (sq - b)
            self.s2, self.c2 = t, c
        values.append(x)
        return full or len(values) == self.period

    @property
    def total(self) -> float:
        return self.s + self.c

    @property
    def total_squares(self) -> float:
        return self.s2 + self.c2

    def variance(self, ddof: int) -> float:
        """Variance of the window (ddof 0: population, 1: sample), never negative.

        The O(1) formula (sum of squares - square of sum / n) cancels catastrophically when the
        spread is tiny next to the level: its rounding noise is ~1e-16 x mean of squares, which
        would give a flat series a band width of ~1e-8 x price. Below 1e-12 x mean of squares
        the result is noise, so it is recomputed exactly by two passes over the window: O(period),
        only for (near-)flat windows, still bounded by the period.
        """
        n = len(self.values)
        total = self.s + self.c
        mean_squares = (self.s2 + self.c2) / n
        variance = (mean_squares - (total / n) * (total / n)) * n / (n - ddof)
        if variance > 1e-12 * mean_squares:
            return variance
        # Deviations from the first value are exact for near-equal values (Sterbenz), so a flat
        # window gives exactly 0.
        first = self.values[0]
        deviations = [v - first for v in self.values]
        shift = math.fsum(deviations)
        spread = math.fsum([d * d for d in deviations]) - shift * shift / n
        return max(spread, 0.0) / (n - ddof)

    def scale(self, factor: float) -> None:
        """Multiply every value by factor (a split); squares scale by factor squared."""
        self.values = deque([v * factor for v in self.values], maxlen=self.period)
        self.s *= factor
        self.c *= factor
        self.s2 *= factor * factor
        self.c2 *= factor * factor

    def to_state(self) -> list[Any]:
        """[period, squares, values, s, c, s2, c2] (indicator state version 2: positional, see
        IndicatorSet.to_state)."""
        return [self.period, self.squares, list(self.values), self.s, self.c, self.s2, self.c2]

    @classmethod
    def from_state(cls, state: list[Any] | dict[str, Any]) -> RollingWindow:
        """As to_state writes it, or the object of version 1."""
        if isinstance(state, dict):
            state = [state["period"], state["squares"], state["values"], *state["sums"]]
        period, squares, values, s, c, s2, c2 = state
        window = cls(period, squares)
        window.values.extend(values)
        window.s, window.c, window.s2, window.c2 = s, c, s2, c2
        return window


def not_finite(x: float) -> ValueError:
    """The error for NaN and infinities, which would poison a rolling sum for `period` bars or
    forever. Callers test `x - x != 0.0` inline (NaN and ±inf; inf - inf is NaN): cheaper per bar
    than a function call or math.isfinite."""
    return ValueError(f"indicator input must be finite, got {x!r}")
