"""Naive and drift forecasts of log closes with the prediction intervals of FPP3 §5.5."""

from __future__ import annotations

import math

import numpy as np

from ml.outcome import Forecast


def naive(y: np.ndarray, horizon: int) -> Forecast | None:
    """Last value, σ_h = σ̂·√h; σ̂² = Σ e²/(T − K − M) with e the one-step changes, K = 0
    parameters and M = 1 missing residual. None below 2 bars."""
    if len(y) < 2:
        return None
    changes = np.diff(y)
    sigma = math.sqrt(float(changes @ changes) / (len(y) - 1))
    steps = np.arange(1, horizon + 1)
    return Forecast.from_log_scale("naive", np.full(horizon, y[-1]), sigma * np.sqrt(steps))


def drift(y: np.ndarray, horizon: int) -> Forecast | None:
    """Last value + h·b with b = (y_T − y_1)/(T − 1), σ_h = σ̂·√(h(1 + h/(T − 1)));
    σ̂² = Σ (e − b)²/(T − K − M) with K = 1, M = 1. None below 3 bars.

    (T − 1) is the number of changes b averages, so h²σ̂²/(T − 1) is exactly h²·Var(b̂); the
    first edition (FPP2) printed h/T.
    """
    t = len(y)
    if t < 3:
        return None
    slope = float(y[-1] - y[0]) / (t - 1)
    resid = np.diff(y) - slope
    sigma = math.sqrt(float(resid @ resid) / (t - 2))
    steps = np.arange(1, horizon + 1)
    return Forecast.from_log_scale(
        "drift", y[-1] + slope * steps, sigma * np.sqrt(steps * (1 + steps / (t - 1)))
    )
