"""MACD from EMA objects, with TA-Lib's aligned seeding of the fast EMA."""

from __future__ import annotations

from typing import Any, NamedTuple

from analytics.indicators.ema import EMA
from analytics.indicators.rolling import not_finite

_new_tuple = tuple.__new__


class MacdValue(NamedTuple):
    macd: float
    signal: float
    hist: float


class MACD:
    """MACD(fast, slow, signal): line = EMA_fast - EMA_slow, signal = EMA(line), hist = difference.

    TA-Lib aligns the fast EMA with the slow one: the fast EMA's seed SMA is taken over the `fast`
    values ending on the bar of the slow EMA's first value (bar `slow`), so the fast EMA only starts
    consuming at bar slow - fast + 1. Its first line value therefore differs from two naive EMAs.
    Warm-up: (slow - 1) + (signal - 1) bars; all three outputs appear together, as in TA-Lib.
    """

    __slots__ = ("fast", "slow", "signal", "warmup", "_skip", "_fast", "slow_ema", "_signal")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        if not 1 <= fast < slow or signal < 1:
            raise ValueError(f"need 1 <= fast < slow and signal >= 1, got {fast}/{slow}/{signal}")
        self.fast, self.slow, self.signal = fast, slow, signal
        self.warmup = (slow - 1) + (signal - 1)
        self._skip = slow - fast  # bars the fast EMA does not see (the aligned seeding)
        self._fast = EMA(fast)
        # The slow EMA is a plain EMA(slow): IndicatorSet reuses it as its ema_slow.
        self.slow_ema = EMA(slow)
        self._signal = EMA(signal)

    def update(self, x: float) -> MacdValue | None:
        """Feed one close; the MACD triple after the warm-up, else None."""
        if x - x != 0.0:
            raise not_finite(x)
        slow = self.slow_ema.update(x)
        if self._skip:
            self._skip -= 1
            return None
        fast = self._fast.update(x)
        if slow is None or fast is None:
            return None
        line = fast - slow
        signal = self._signal.update(line)
        if signal is None:
            return None
        return _new_tuple(MacdValue, (line, signal, line - signal))  # no namedtuple __new__ frame

    def rescale(self, factor: float) -> None:
        for ema in (self._fast, self.slow_ema, self._signal):
            ema.rescale(factor)

    def to_state(self) -> list[Any]:
        """[fast, slow, signal, skip, fast EMA, slow EMA, signal EMA]."""
        return [
            self.fast,
            self.slow,
            self.signal,
            self._skip,
            self._fast.to_state(),
            self.slow_ema.to_state(),
            self._signal.to_state(),
        ]

    @classmethod
    def from_state(cls, state: list[Any] | dict[str, Any]) -> MACD:
        """As to_state writes it, or the object of version 1."""
        if isinstance(state, dict):
            names = ("skip", "fast", "slow", "signal")
            state = [*state["periods"], *[state[name] for name in names]]
        fast, slow, signal, skip, fast_ema, slow_ema, signal_ema = state
        macd = cls(fast, slow, signal)
        macd._skip = skip
        macd._fast = EMA.from_state(fast_ema)
        macd.slow_ema = EMA.from_state(slow_ema)
        macd._signal = EMA.from_state(signal_ema)
        return macd
