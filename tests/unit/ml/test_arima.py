"""The ARIMA fit and forecast: statsmodels' state-space ARIMA as the oracle, intervals ordered."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from statsmodels.tsa.arima.model import ARIMA

from ml.arima import fit_order, forecast
from ml.arma import Deadline
from ml.outcome import Z95


def _statsmodels(y: np.ndarray, order: tuple[int, int, int], params: np.ndarray | None):
    model = ARIMA(y, order=order, trend="t" if order[1] else "c")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit() if params is None else model.filter(params)


@pytest.mark.parametrize("order", [(1, 1, 1), (0, 1, 1), (2, 1, 0), (1, 0, 0), (2, 0, 1)])
def test_likelihood_aicc_and_forecast_equal_statsmodels_at_our_estimates(
    tsla_log_closes: np.ndarray, order: tuple[int, int, int]
) -> None:
    y = tsla_log_closes[-500:]
    fit = fit_order(y, order, 50, Deadline.after(30))
    oracle = _statsmodels(y, order, np.r_[fit.mean, fit.ar, fit.ma, fit.sigma2])
    assert fit.loglike == pytest.approx(oracle.llf, rel=1e-10)
    assert fit.aicc == pytest.approx(oracle.aicc, rel=1e-8)
    ours = forecast(fit, 5)
    predicted = oracle.get_forecast(5)
    log_median = np.log(ours.median)
    assert log_median == pytest.approx(predicted.predicted_mean, abs=1e-9)
    assert (np.log(ours.hi95) - log_median) / Z95 == pytest.approx(
        np.sqrt(predicted.var_pred_mean), rel=1e-8
    )


@pytest.mark.parametrize("order", [(1, 1, 1), (0, 1, 1), (2, 1, 0)])
def test_our_optimum_is_as_good_as_statsmodels_own_fit(
    tsla_log_closes: np.ndarray, order: tuple[int, int, int]
) -> None:
    y = tsla_log_closes[-500:]
    fit = fit_order(y, order, 50, Deadline.after(30))
    assert fit.loglike >= _statsmodels(y, order, None).llf - 1e-4


@pytest.mark.parametrize("end", [300, 1200, 2500, 3303])
def test_intervals_nest_and_the_median_is_below_the_mean(
    tsla_log_closes: np.ndarray, end: int
) -> None:
    y = tsla_log_closes[:end][-500:]
    for order in [(0, 1, 0), (1, 1, 1), (2, 1, 2), (1, 0, 1)]:
        f = forecast(fit_order(y, order, 50, Deadline.after(30)), 5)
        columns = np.array([f.lo95, f.lo80, f.median, f.hi80, f.hi95])
        assert np.all(np.diff(columns, axis=0) > 0), order
        assert np.all(np.array(f.median) < np.array(f.mean)), order
        assert np.all(np.diff(np.array(f.hi95) / np.array(f.lo95)) > 0), "widths grow with h"
