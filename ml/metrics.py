"""Forecast accuracy: MASE (scaled by the window's one-step naive MAE), sMAPE, and interval
coverage with its Wilson score interval."""

from __future__ import annotations

import math

import numpy as np

from ml.outcome import Z95


def naive_scale(window_closes: np.ndarray) -> float:
    """Mean absolute one-step change of the closes an origin's model saw (MASE's denominator)."""
    return float(np.mean(np.abs(np.diff(window_closes))))


def scaled_error(actual: float, forecast: float, scale: float) -> float:
    """|actual − forecast| / scale: one forecast's term of the MASE."""
    return abs(actual - forecast) / scale


def smape(actual: float, forecast: float) -> float:
    """Symmetric absolute percentage error, in percent: 200·|a − f| / (|a| + |f|)."""
    denominator = abs(actual) + abs(forecast)
    return 0.0 if denominator == 0 else 200 * abs(actual - forecast) / denominator


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default); (0, 1) without trials."""
    if trials == 0:
        return 0.0, 1.0
    share = successes / trials
    z2n = z * z / trials
    centre = (share + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(share * (1 - share) / trials + z2n / (4 * trials))
    return max(0.0, centre - half), min(1.0, centre + half)
