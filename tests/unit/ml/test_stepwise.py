"""The stepwise order search finds the order that generated a simulated series."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.tsa.arima_process import arma_generate_sample

from ml.forecast import forecast_origin
from ml.params import ForecastParams

GENERATORS = {  # (p, d, q) -> the lag polynomials of the differenced series
    (1, 1, 0): ([1, -0.6], [1]),
    (0, 1, 1): ([1], [1, 0.6]),
    (1, 1, 1): ([1, -0.5], [1, 0.4]),
}


def _simulated(order: tuple[int, int, int], n: int, seed: int) -> np.ndarray:
    ar, ma = GENERATORS[order]
    normal = np.random.default_rng(seed).standard_normal
    changes = arma_generate_sample(ar, ma, n, scale=0.02, distrvs=normal)
    return np.log(100.0) + np.cumsum(changes)


@pytest.mark.parametrize("order", list(GENERATORS))
@pytest.mark.parametrize(
    ("n", "seed"),
    [(500, 0), (500, 2), (500, 3), (140, 0)],  # 140 bars: searched by exact ML, not CSS
)
def test_the_generating_order_is_found(order: tuple[int, int, int], n: int, seed: int) -> None:
    outcome = forecast_origin(_simulated(order, n, seed), None, 0)
    assert outcome.searched and outcome.order == order


def test_the_bounds_hold() -> None:
    params = ForecastParams(max_p=0, max_q=0)
    assert forecast_origin(_simulated((1, 1, 1), 500, 0), None, 0, params).order == (0, 1, 0)
