"""Rolling volatility: sample stdev of log returns, annualised by a calendar-derived factor."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from analytics.indicators.rolling import RollingWindow, not_finite
from analytics.indicators.sessions import exchange_sessions

_INTERVAL = re.compile(r"^(\d+)(m|h|d|wk|mo)$")


@lru_cache(maxsize=64)
def annualization_factor(interval: str, exchange: str = "XNYS") -> float:
    """sqrt(bars per year) for bars of `interval` on `exchange`.

    Daily: sqrt(sessions per year), the mean over the full calendar years the exchange calendar
    covers (~252 for XNYS). Intraday: sqrt(sessions per year x bars per regular session), with the
    session length the median over those sessions (390 min on XNYS; half-days do not count).
    Weekly and monthly: sqrt(52) and sqrt(12).
    """
    match = _INTERVAL.match(interval)
    if match is None:
        raise ValueError(f"unknown bar interval {interval!r}")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "wk":
        return math.sqrt(52 / count)
    if unit == "mo":
        return math.sqrt(12 / count)
    sessions_per_year, session_minutes = exchange_sessions(exchange)
    if unit == "d":
        return math.sqrt(sessions_per_year / count)
    minutes = count * (60 if unit == "h" else 1)
    return math.sqrt(sessions_per_year * math.ceil(session_minutes / minutes))


class Volatility:
    """Annualised rolling stdev of log returns over `period` returns, ddof = 1 (sample stdev).

    Warm-up: `period` bars (period returns need period + 1 closes). Closes must be > 0.
    """

    __slots__ = ("period", "annualization", "warmup", "_prev", "_window")

    def __init__(self, period: int = 20, annualization: float = 1.0) -> None:
        if period < 2:
            raise ValueError(f"a sample stdev needs period >= 2, got {period}")
        self.period = period
        self.annualization = annualization
        self.warmup = period
        self._prev: float | None = None
        self._window = RollingWindow(period, squares=True)

    def update(self, x: float) -> float | None:
        """Feed one close; the annualised volatility once `period` returns were seen, else None."""
        if x - x != 0.0:
            raise not_finite(x)
        if not x > 0.0:
            raise ValueError(f"volatility needs positive closes, got {x!r}")
        prev = self._prev
        self._prev = x
        if prev is None:
            return None
        window = self._window
        if not window.push(math.log(x / prev)):
            return None
        return math.sqrt(window.variance(ddof=1)) * self.annualization

    def rescale(self, factor: float) -> None:
        """Returns are ratios and do not change; the last close moves to the new basis."""
        if self._prev is not None:
            self._prev *= factor

    def to_state(self) -> list[Any]:
        """[annualization, prev, window] (the window holds the period)."""
        return [self.annualization, self._prev, self._window.to_state()]

    @classmethod
    def from_state(cls, state: list[Any] | dict[str, Any]) -> Volatility:
        """As to_state writes it, or the object of version 1."""
        if isinstance(state, dict):
            state = [state["annualization"], state["prev"], state["window"]]
        annualization, prev, window_state = state
        window = RollingWindow.from_state(window_state)
        vol = cls(window.period, annualization)
        vol._prev = prev
        vol._window = window
        return vol
