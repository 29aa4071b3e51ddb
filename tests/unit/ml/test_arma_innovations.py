"""The exact likelihood's innovations (ml.arma_kernels, statsmodels' kernels compiled): equal
to statsmodels' arma_innovations and arma_acovf over every order the search tries, near the
edge of the stationary region too."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.tsa.arima_process import arma_acovf
from statsmodels.tsa.innovations.arma_innovations import arma_innovations

from ml.arma import FREE_BOUND, coefficients
from ml.arma_kernels import autocovariances, innovations

ORDERS = [(p, q) for p in range(4) for q in range(4)]


@pytest.mark.parametrize(("p", "q"), ORDERS)
def test_innovations_equal_statsmodels(tsla_log_closes: np.ndarray, p: int, q: int) -> None:
    x = np.diff(tsla_log_closes[-501:])
    ones = np.ones_like(x)
    rng = np.random.default_rng(10 * p + q)
    draws = [(rng.normal(0.0, 1.5, p + q), 1e-9, False) for _ in range(20)]
    # The edge the optimizer may reach (a fit there is refused as near a unit root): the
    # autocovariance system's condition number reaches ~1e9, two correct solvers (LAPACK's and
    # ours) agree to ~3e-7 there, and the innovations recursion amplifies that to ~1e-4 of the
    # innovations' scale. So there an innovation near zero is compared at that scale, not its
    # own: the last bits depend on the CPU the kernels were compiled for (one innovation of
    # -1.7e-11 came out as +1.4e-12 on one machine, of innovations ~3e-2).
    draws.append((np.full(p + q, FREE_BOUND), 1e-3, True))
    for free, rel, edge in draws:
        ar, ma = coefficients(free, p)
        ux, u1, v = innovations(x, ar, ma)
        expected_u, expected_v = arma_innovations(np.column_stack([x, ones]), ar, ma)
        assert v == pytest.approx(expected_v, rel=rel)
        assert_close(ux, expected_u[:, 0], rel, edge)
        assert_close(u1, expected_u[:, 1], rel, edge)
        ar_poly, ma_poly = np.r_[1.0, -ar], np.r_[1.0, ma]
        expected_acovf = arma_acovf(ar_poly, ma_poly, nobs=len(x))
        assert_close(autocovariances(ar, ma, len(x)), expected_acovf, rel, edge)


def assert_close(ours: np.ndarray, theirs: np.ndarray, rel: float, edge: bool) -> None:
    """Equal to `rel`; at the edge, a value near zero is compared at the scale of the whole
    array (its largest magnitude), not its own."""
    floor = rel * np.abs(theirs).max() if edge else 1e-12
    assert ours == pytest.approx(theirs, rel=rel, abs=floor)


@pytest.mark.parametrize("ar", [[1.0], [0.5, 0.5], [1.2, -0.1], [0.0, 0.0, 1.0]])
def test_a_non_stationary_ar_part_is_refused(ar: list[float]) -> None:
    x = np.linspace(0.0, 1.0, 50)
    with pytest.raises(ValueError, match="not stationary"):
        innovations(x, np.array(ar), np.zeros(0))
