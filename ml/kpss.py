"""The order of differencing, d ∈ {0, 1}, by the level-stationarity KPSS test (as auto.arima)."""

from __future__ import annotations

import math

import numpy as np

from ml.params import KPSS_CRITICAL


def kpss_level(x: np.ndarray) -> float:
    """KPSS statistic for the null of level stationarity, Bartlett kernel.

    Lags trunc(3·sqrt(n)/13), as forecast::ndiffs and statsforecast use; equals
    statsmodels.tsa.stattools.kpss(x, "c", nlags=that) without its p-value interpolation.
    """
    n = len(x)
    resid = x - x.mean()
    lags = math.floor(3 * math.sqrt(n) / 13)
    long_run = resid @ resid / n
    for lag in range(1, lags + 1):
        long_run += 2 * (1 - lag / (lags + 1)) * (resid[lag:] @ resid[:-lag]) / n
    if not long_run > 0:
        raise ValueError("the series is constant: KPSS is undefined")
    partial = np.cumsum(resid)
    return float(partial @ partial / (n * n * long_run))


def choose_d(y: np.ndarray, alpha: float = 0.05) -> int:
    """1 when KPSS rejects level stationarity of `y` at `alpha`, else 0."""
    return int(kpss_level(y) > KPSS_CRITICAL[alpha])
