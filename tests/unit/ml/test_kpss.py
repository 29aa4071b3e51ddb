"""d by the level-stationarity KPSS test: its statistic, and its choice on seeded series."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from statsmodels.tsa.stattools import kpss

from ml.kpss import choose_d, kpss_level
from tests.unit.ml.synthetic import random_walk, white_noise


@pytest.mark.parametrize("n", [120, 250, 500])
def test_statistic_equals_statsmodels_level_kpss_with_auto_arima_lags(n: int) -> None:
    x = random_walk(n, seed=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels warns when the p-value leaves its table
        expected = kpss(x, regression="c", nlags=math.floor(3 * math.sqrt(n) / 13))[0]
    assert kpss_level(x) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_random_walk_is_differenced(seed: int) -> None:
    assert choose_d(random_walk(500, seed)) == 1


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_white_noise_is_not(seed: int) -> None:
    assert choose_d(white_noise(500, seed)) == 0


def test_rejection_rates_over_seeds_match_a_5_percent_test() -> None:
    """About 5% of white-noise windows are differenced (the test's size), nearly every random
    walk is (its power at 500 bars)."""
    seeds = range(200)
    white = np.mean([choose_d(white_noise(500, seed)) for seed in seeds])
    walks = np.mean([choose_d(random_walk(500, seed)) for seed in seeds])
    assert 0.01 <= white <= 0.10
    assert walks >= 0.97


def test_constant_series_has_no_statistic() -> None:
    with pytest.raises(ValueError, match="constant"):
        kpss_level(np.full(50, 4.6))
