"""The forecaster's parameters: schedule, window, order search bounds and fit budget."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ForecastParams:
    """One set of forecasting parameters (the later service reads them from its settings)."""

    horizon: int = 5  # H: steps forecast at each origin (step k = the k-th bar after it)
    every: int = 5  # N: an origin every N bars of the anchor index
    min_bars: int = 120  # M: bars a series needs before its first origin
    window: int = 500  # W: trailing bars fitted at an origin
    refits: int = 5  # K: refits of a found order before it is searched again
    max_p: int = 3
    max_q: int = 3
    kpss_alpha: float = 0.05  # level-stationarity KPSS, as auto.arima's ndiffs
    maxiter: int = 50  # optimizer iterations per likelihood fit
    time_budget_s: float = 2.0  # CPU time of one origin before it gives up ("timeout")

    def __post_init__(self) -> None:
        for name in ("horizon", "every", "min_bars", "window", "maxiter"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.refits < 0 or self.max_p < 0 or self.max_q < 0:
            raise ValueError("refits, max_p and max_q must not be negative")
        if self.min_bars > self.window:
            raise ValueError(f"min_bars {self.min_bars} exceeds window {self.window}")
        if self.kpss_alpha not in KPSS_CRITICAL:
            raise ValueError(f"kpss_alpha must be one of {sorted(KPSS_CRITICAL)}")
        if self.time_budget_s <= 0:
            raise ValueError("time_budget_s must be positive")

    def to_json(self) -> dict[str, int | float]:
        return asdict(self)


# Critical values of the level-stationarity KPSS statistic (Kwiatkowski et al. 1992, table 1).
KPSS_CRITICAL = {0.10: 0.347, 0.05: 0.463, 0.025: 0.574, 0.01: 0.739}
