"""The fit's shortcuts around scipy and statsmodels give their public routines' numbers bit for
bit: the partial-autocorrelation map (compiled), and Levenberg–Marquardt called on MINPACK
directly (CSS with its closed-form Jacobian, exact ML with forward differences). A scipy or
statsmodels upgrade that moves the private routines these use fails here first."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares
from statsmodels.tsa.statespace.tools import constrain_stationary_univariate

from ml.arma import (
    FREE_BOUND,
    Deadline,
    coefficients,
    css_problem,
    exact_problem,
    fit_css,
    fit_exact,
)

ORDERS = [(p, q) for p in range(4) for q in range(4) if p + q]


def test_the_coefficients_equal_statsmodels_map_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20_000):
        n = int(rng.integers(1, 4))
        free = rng.normal(0.0, 3.0, n) * 10 ** rng.uniform(-3.0, 1.5)
        ar, ma = coefficients(np.r_[free, free], n)
        expected = constrain_stationary_univariate(np.clip(free, -FREE_BOUND, FREE_BOUND))
        assert ar.tobytes() == expected.tobytes()
        assert ma.tobytes() == (-expected).tobytes()


@pytest.mark.parametrize(("p", "q"), ORDERS)
def test_the_fits_equal_scipy_least_squares_bit_for_bit(
    tsla_log_closes: np.ndarray, p: int, q: int
) -> None:
    x = np.diff(tsla_log_closes[-241:])
    deadline = Deadline.after(60.0)

    css, css_jac = css_problem(x, p, p)
    start = np.zeros(p + q)
    expected = least_squares(css, start, jac=css_jac, method="lm", max_nfev=50)  # type: ignore[arg-type]
    ours = fit_css(x, p, q, p, 50, deadline)
    assert ours.free.tobytes() == expected.x.tobytes()
    assert ours.converged == (expected.status > 0)

    exact = exact_problem(x, p)
    expected = least_squares(exact, ours.free, jac="2-point", method="lm", max_nfev=50)
    refined = fit_exact(x, p, ours.free, 50, deadline)
    assert refined.free.tobytes() == expected.x.tobytes()
    assert refined.converged == (expected.status > 0)
