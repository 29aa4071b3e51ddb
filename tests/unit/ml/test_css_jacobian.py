"""The CSS fit's closed-form Jacobian: equal to finite differences of the residuals it
differentiates, and the optimum it leads to as good as the one differencing found."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares
from scipy.optimize._numdiff import approx_derivative

from ml.arma import (
    FREE_BOUND,
    Deadline,
    coefficients,
    coefficients_jacobian,
    css_jacobian,
    css_residuals,
    fit_css,
)

ORDERS = [(1, 0), (0, 1), (1, 1), (2, 1), (1, 2), (2, 2), (3, 0), (0, 3), (3, 3)]


def chained(x: np.ndarray, free: np.ndarray, p: int, cond: int) -> np.ndarray:
    ar, ma = coefficients(free, p)
    return css_jacobian(x, ar, ma, cond) @ coefficients_jacobian(free, p)


@pytest.mark.parametrize(("p", "q"), ORDERS)
def test_the_jacobian_equals_central_differences_of_the_residuals(
    tsla_log_closes: np.ndarray, p: int, q: int
) -> None:
    x = np.diff(tsla_log_closes[-301:])
    rng = np.random.default_rng(p * 10 + q)
    for _ in range(5):
        free = rng.normal(0.0, 1.0, p + q)
        numeric = approx_derivative(
            lambda f: css_residuals(x, *coefficients(f, p), 3),
            free,
            method="3-point",
            rel_step=1e-5,  # near a unit root the default step's error reaches 1e-4
        )
        ours = chained(x, free, p, 3)
        assert np.max(np.abs(ours - numeric)) <= 1e-7 * np.max(np.abs(numeric))


def test_a_clipped_free_value_has_no_slope() -> None:
    free = np.array([0.4, FREE_BOUND + 5.0, -0.3])
    jac = coefficients_jacobian(free, 2)
    assert np.all(jac[:, 1] == 0.0) and np.any(jac[:, 0] != 0.0) and jac[2, 2] != 0.0


@pytest.mark.parametrize(("p", "q"), ORDERS)
def test_the_css_optimum_is_as_good_as_by_finite_differences(
    tsla_log_closes: np.ndarray, p: int, q: int
) -> None:
    for end in (400, 1700, 3303):
        x = np.diff(tsla_log_closes[:end][-500:])

        def residuals(free: np.ndarray, x: np.ndarray = x) -> np.ndarray:
            return css_residuals(x, *coefficients(free, p), 3)

        ours = fit_css(x, p, q, 3, 50, Deadline.after(30))
        differenced = least_squares(residuals, np.zeros(p + q), method="lm", max_nfev=50)
        ssr = float(residuals(ours.free) @ residuals(ours.free))
        # LM stops once an iteration lowers the sum by < 1e-8 of it (ftol): two paths to the
        # same optimum stop a little apart, so "as good" is within 1e-6.
        assert ssr <= float(differenced.fun @ differenced.fun) * (1 + 1e-6)
