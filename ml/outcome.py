"""What one origin yields: each model's forecast on the price scale, and the ARIMA's outcome."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

# Two-sided normal quantiles of the 80% and 95% intervals (scipy.stats.norm.ppf(0.9), (0.975)).
Z80 = 1.2815515655446004
Z95 = 1.959963984540054


class Status(StrEnum):
    FITTED = "fitted"
    FAILED = "failed"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Forecast:
    """H steps of one model, back-transformed from the log scale; step k is index k − 1.

    `median` = exp(log-scale mean); `mean` = exp(μ + σ²/2) (lognormal); the bounds are the
    log-scale normal bounds, exponentiated, so lo95 ≤ lo80 ≤ median ≤ hi80 ≤ hi95 always.
    """

    model: str  # "arima", "naive" or "drift"
    median: tuple[float, ...]
    mean: tuple[float, ...]
    lo80: tuple[float, ...]
    hi80: tuple[float, ...]
    lo95: tuple[float, ...]
    hi95: tuple[float, ...]
    order: tuple[int, int, int] | None = None  # (p, d, q) of an ARIMA
    aicc: float | None = None  # of the ARIMA's exact likelihood

    @classmethod
    def from_log_scale(
        cls,
        model: str,
        log_mean: np.ndarray,
        log_sd: np.ndarray,
        order: tuple[int, int, int] | None = None,
        aicc: float | None = None,
    ) -> Forecast:
        def exp(values: np.ndarray) -> tuple[float, ...]:
            return tuple(float(v) for v in np.exp(values))

        return cls(
            model=model,
            median=exp(log_mean),
            mean=exp(log_mean + log_sd**2 / 2),
            lo80=exp(log_mean - Z80 * log_sd),
            hi80=exp(log_mean + Z80 * log_sd),
            lo95=exp(log_mean - Z95 * log_sd),
            hi95=exp(log_mean + Z95 * log_sd),
            order=order,
            aicc=aicc,
        )

    def is_finite(self) -> bool:
        """Whether every number is finite and positive (an overflowed exp is neither)."""
        columns = (self.median, self.mean, self.lo80, self.hi80, self.lo95, self.hi95)
        return all(math.isfinite(v) and v > 0 for column in columns for v in column)


@dataclass(frozen=True)
class Outcome:
    """The result of one origin.

    `status` is the ARIMA's: `fitted` puts its forecast first in `forecasts`; `failed` or
    `timeout` say why in `message`. The naive and drift forecasts follow whenever the window
    allows them (they need 2 and 3 bars), whatever the ARIMA did. `order` and `refits_left`
    are what the caller keeps for the next origin of the series.
    """

    status: Status
    message: str
    forecasts: tuple[Forecast, ...]
    order: tuple[int, int, int] | None
    refits_left: int
    searched: bool  # the fitted order was searched at this origin (False: a cached one refitted)
    warnings: tuple[str, ...] = ()  # distinct warnings raised during the fit, in order

    def forecast(self, model: str) -> Forecast | None:
        return next((f for f in self.forecasts if f.model == model), None)
