"""forecast_origin: the order cache, failures as outcomes, time budget, warnings, determinism."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ml.forecast
from ml.forecast import forecast_origin, log_closes
from ml.outcome import Status
from ml.params import ForecastParams
from tests.unit.ml.synthetic import explosive, random_walk

PARAMS = ForecastParams()


def _nested(outcome) -> bool:
    return all(
        np.all(np.diff(np.array([f.lo95, f.lo80, f.median, f.hi80, f.hi95]), axis=0) >= 0)
        and np.all(np.array(f.median) <= np.array(f.mean))
        for f in outcome.forecasts
    )


def test_a_search_then_refits_of_the_order_found(tsla_log_closes: np.ndarray) -> None:
    y = tsla_log_closes[:2000]
    searched = forecast_origin(y, None, 0, PARAMS)
    assert searched.status is Status.FITTED and searched.searched
    assert searched.refits_left == PARAMS.refits
    assert [f.model for f in searched.forecasts] == ["arima", "naive", "drift"]
    arima = searched.forecast("arima")
    assert arima.order == searched.order and arima.aicc is not None
    assert all(len(column) == PARAMS.horizon for column in (arima.median, arima.hi95))
    refit = forecast_origin(tsla_log_closes[:2005], searched.order, searched.refits_left, PARAMS)
    assert refit.status is Status.FITTED and not refit.searched
    assert (refit.order, refit.refits_left) == (searched.order, PARAMS.refits - 1)
    again = forecast_origin(tsla_log_closes[:2010], refit.order, 0, PARAMS)
    assert again.searched and again.refits_left == PARAMS.refits
    assert _nested(searched) and _nested(refit)


def test_only_the_last_window_bars_are_used(tsla_log_closes: np.ndarray) -> None:
    whole = forecast_origin(tsla_log_closes[:1500], None, 0, PARAMS)
    window = forecast_origin(tsla_log_closes[1000:1500], None, 0, PARAMS)
    assert whole == window


def test_same_window_gives_identical_numbers(tsla_log_closes: np.ndarray) -> None:
    for y, order, left in [
        (tsla_log_closes[:700], None, 0),
        (tsla_log_closes[:3303], (2, 1, 2), 3),
        (random_walk(400, seed=5), None, 0),
    ]:
        first = forecast_origin(y.copy(), order, left, PARAMS)
        second = forecast_origin(y.copy(), order, left, PARAMS)
        assert first == second
        assert [v.hex() for f in first.forecasts for v in f.median + f.hi95] == [
            v.hex() for f in second.forecasts for v in f.median + f.hi95
        ]


def test_constant_prices_fail_with_a_message() -> None:
    outcome = forecast_origin(log_closes([100.0] * 300), None, 0, PARAMS)
    assert outcome.status is Status.FAILED
    assert "same" in outcome.message
    assert outcome.order is None and outcome.refits_left == 0
    assert outcome.forecast("arima") is None
    assert outcome.forecast("naive").median == pytest.approx((100.0,) * PARAMS.horizon)


def test_a_five_bar_history_fails_with_a_message() -> None:
    outcome = forecast_origin(log_closes([100.0, 101.0, 99.5, 100.5, 102.0]), None, 0, PARAMS)
    assert outcome.status is Status.FAILED
    assert outcome.message == "5 bars; an origin needs at least 120"
    assert [f.model for f in outcome.forecasts] == ["naive", "drift"]


@pytest.mark.parametrize("order", [None, (0, 1, 0)])
def test_an_explosive_series_fails_with_a_message(order: tuple[int, int, int] | None) -> None:
    outcome = forecast_origin(explosive(300, seed=4), order, 3, PARAMS)
    assert outcome.status is Status.FAILED
    assert outcome.message.startswith("explosive window: log closes grow like an AR(1) with φ")
    assert outcome.order is None and outcome.refits_left == 0


def test_a_close_that_is_not_a_price_fails_with_a_message() -> None:
    closes = np.exp(random_walk(300, seed=6))
    closes[-10] = 0.0
    outcome = forecast_origin(log_closes(closes), None, 0, PARAMS)
    assert outcome.status is Status.FAILED
    assert "not finite" in outcome.message and "position 290" in outcome.message


def test_the_time_budget_ends_a_fit_as_a_timeout(tsla_log_closes: np.ndarray) -> None:
    params = ForecastParams(time_budget_s=1e-9)
    outcome = forecast_origin(tsla_log_closes[:1000], None, 0, params)
    assert outcome.status is Status.TIMEOUT
    assert "time budget" in outcome.message
    assert [f.model for f in outcome.forecasts] == ["naive", "drift"]


def test_warnings_are_kept_once_in_the_outcome_and_never_escape(
    tsla_log_closes: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ml.forecast.search_order

    def noisy(*args, **kwargs):
        for _ in range(100):
            warnings.warn("overflow in a likelihood", RuntimeWarning, stacklevel=1)
        np.log(np.zeros(1))  # numpy's own divide-by-zero warning
        return real(*args, **kwargs)

    monkeypatch.setattr(ml.forecast, "search_order", noisy)
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        outcome = forecast_origin(tsla_log_closes[:800], None, 0, PARAMS)
    assert escaped == []
    assert outcome.status is Status.FITTED
    assert outcome.warnings == (
        "RuntimeWarning: overflow in a likelihood",
        "RuntimeWarning: divide by zero encountered in log",
    )


def test_a_cached_order_that_no_longer_fits_is_searched_again(
    tsla_log_closes: np.ndarray,
) -> None:
    # On this window ARIMA(1,1,1) puts a root on the unit circle (φ ≈ −θ ≈ 1).
    outcome = forecast_origin(tsla_log_closes[:500], (1, 1, 1), 4, PARAMS)
    assert outcome.status is Status.FITTED and outcome.searched
    assert outcome.refits_left == PARAMS.refits
    assert any("searched again" in line for line in outcome.warnings)
