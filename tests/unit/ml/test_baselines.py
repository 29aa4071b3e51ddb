"""Naive and drift forecasts against values computed by hand from FPP3 §5.5's formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.baselines import drift, naive
from ml.outcome import Z80, Z95


def test_naive_by_hand() -> None:
    # Changes 0.1, −0.1, 0.2: σ̂² = (0.01 + 0.01 + 0.04) / (T − 1 = 3) = 0.02.
    forecast = naive(np.array([0.0, 0.1, 0.0, 0.2]), horizon=2)
    sd = [math.sqrt(0.02), math.sqrt(0.02 * 2)]  # σ̂·√h
    assert forecast.model == "naive"
    assert forecast.median == pytest.approx([math.exp(0.2)] * 2, rel=1e-15)
    assert forecast.lo80 == pytest.approx([math.exp(0.2 - Z80 * s) for s in sd], rel=1e-14)
    assert forecast.hi95 == pytest.approx([math.exp(0.2 + Z95 * s) for s in sd], rel=1e-14)
    assert forecast.mean == pytest.approx([math.exp(0.2 + s * s / 2) for s in sd], rel=1e-14)


def test_drift_by_hand() -> None:
    # b = (0.3 − 0)/(T − 1 = 3) = 0.1; residuals 0, −0.2, 0.2: σ̂² = 0.08 / (T − 2 = 2) = 0.04.
    forecast = drift(np.array([0.0, 0.1, 0.0, 0.3]), horizon=2)
    sd = [0.2 * math.sqrt(1 * (1 + 1 / 3)), 0.2 * math.sqrt(2 * (1 + 2 / 3))]
    assert forecast.model == "drift"
    assert forecast.median == pytest.approx([math.exp(0.4), math.exp(0.5)], rel=1e-15)
    assert forecast.lo95 == pytest.approx(
        [math.exp(0.4 - Z95 * sd[0]), math.exp(0.5 - Z95 * sd[1])], rel=1e-14
    )
    assert forecast.hi80 == pytest.approx(
        [math.exp(0.4 + Z80 * sd[0]), math.exp(0.5 + Z80 * sd[1])], rel=1e-14
    )


def test_too_short_windows_give_none() -> None:
    assert naive(np.array([4.6]), 5) is None
    assert drift(np.array([4.6, 4.7]), 5) is None
    assert naive(np.array([4.6, 4.7]), 5) is not None
    assert drift(np.array([4.6, 4.7, 4.65]), 5) is not None


def test_interval_multipliers_are_the_normal_quantiles() -> None:
    from statistics import NormalDist

    assert NormalDist().inv_cdf(0.9) == pytest.approx(Z80, rel=1e-12)
    assert NormalDist().inv_cdf(0.975) == pytest.approx(Z95, rel=1e-12)
