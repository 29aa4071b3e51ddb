"""MASE, sMAPE and the Wilson interval against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from ml.metrics import naive_scale, scaled_error, smape, wilson


def test_mase_term_by_hand() -> None:
    scale = naive_scale(np.array([10.0, 11.0, 10.0, 12.0]))  # (1 + 1 + 2) / 3
    assert scale == pytest.approx(4 / 3, rel=1e-15)
    assert scaled_error(13.0, 12.0, scale) == pytest.approx(0.75, rel=1e-15)
    assert scaled_error(11.0, 12.0, scale) == pytest.approx(0.75, rel=1e-15)


def test_smape_by_hand() -> None:
    assert smape(100.0, 110.0) == pytest.approx(200 * 10 / 210, rel=1e-15)
    assert smape(110.0, 100.0) == smape(100.0, 110.0)
    assert smape(0.0, 0.0) == 0.0


def test_wilson_by_hand() -> None:
    # 95 of 100, z = 1.959964: centre (0.95 + z²/200)/(1 + z²/100), half-width
    # z/(1 + z²/100)·sqrt(0.95·0.05/100 + z²/40000).
    low, high = wilson(95, 100)
    assert low == pytest.approx(0.88825, abs=5e-6)
    assert high == pytest.approx(0.97846, abs=5e-6)


@pytest.mark.parametrize(("successes", "trials"), [(0, 10), (7, 10), (10, 10), (740, 789)])
def test_wilson_equals_statsmodels(successes: int, trials: int) -> None:
    expected = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    assert wilson(successes, trials) == pytest.approx(expected, abs=1e-12)


def test_wilson_without_trials_says_nothing() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
