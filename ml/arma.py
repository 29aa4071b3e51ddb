"""ARMA(p, q) around a mean: a stationary and invertible parametrization, conditional (CSS) and
exact residuals with the mean and variance profiled out, and their bounded least-squares fit."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import _minpack
from scipy.optimize._numdiff import approx_derivative

from ml import arma_kernels as kernels

LOG_2PI = math.log(2 * math.pi)
FREE_BOUND = kernels.FREE_BOUND  # the free values' clip (see ml.arma_kernels)


class FitTimeout(Exception):
    """The time budget of an origin ran out inside a fit."""


@dataclass(frozen=True)
class Deadline:
    """An instant of the fitting thread's CPU clock after which a fit stops (checked at every
    evaluation). CPU time, not wall time: fits run beside the consumer at a lower priority, and
    a fit that waits for a busy machine's cores must not time out where an idle machine's
    would not (its outcome would then depend on the load, and a replay would differ)."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.thread_time() + seconds)

    def check(self) -> None:
        if time.thread_time() > self.at:
            raise FitTimeout("time budget exhausted during the fit")


def coefficients(free: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """AR and MA coefficients from unconstrained values (Monahan's partial-autocorrelation map).

    Every value maps to a stationary φ(B) = 1 − φ₁B − … and an invertible θ(B) = 1 + θ₁B + …,
    the parametrization of statsmodels' SARIMAX, so the optimizer never leaves the region.
    """
    return kernels.coefficients(_floats(free), p)


def css_residuals(x: np.ndarray, ar: np.ndarray, ma: np.ndarray, cond: int) -> np.ndarray:
    """Conditional residuals of x − mean, as R's arima(method="CSS"): from index `cond` (≥ p),
    the MA recursion started from zeros. They are linear in the mean, whose least-squares
    value is therefore solved, not searched (compiled: ml.arma_kernels)."""
    return kernels.css_residuals(_floats(x), _floats(ar), _floats(ma), cond)


def _floats(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=float)


@dataclass(frozen=True)
class ExactProfile:
    """The exact Gaussian likelihood at given coefficients, the mean and variance profiled."""

    loglike: float
    mean: float
    sigma2: float
    innovations: np.ndarray  # one-step prediction errors of x − mean
    scaled: np.ndarray  # residuals whose sum of squares the likelihood decreases in


def exact_profile(x: np.ndarray, ar: np.ndarray, ma: np.ndarray) -> ExactProfile:
    """Innovations algorithm (exact for a stationary ARMA; statsmodels' kernels, compiled in
    ml.arma_kernels) on x and a column of ones together, so the GLS mean and the ML variance
    follow in closed form.

    With σ² profiled, −2·loglike = n·log(Σ e²/v · (Πv)^(1/n)) + const: maximizing the likelihood
    is a least-squares problem in the residuals e·(Πv)^(1/2n)/√v.
    """
    mean, sigma2, mean_log_v, errors, scaled = kernels.profile(_floats(x), _floats(ar), _floats(ma))
    loglike = -0.5 * len(x) * (LOG_2PI + math.log(sigma2) + 1.0 + mean_log_v)
    return ExactProfile(loglike, mean, sigma2, errors, scaled)


@dataclass(frozen=True)
class Optimum:
    """Where a fit stopped: the free values and whether the optimizer's tolerances were met."""

    free: np.ndarray
    converged: bool


# MINPACK's lmder info codes that mean its tolerances were met (scipy's status > 0); 5 is the
# evaluation limit, 0 improper input.
CONVERGED_INFO = frozenset({1, 2, 3, 4})
TOLERANCE = 1e-8  # ftol, xtol and gtol: least_squares' defaults
LM_STEP_BOUND = 100.0  # MINPACK's `factor`, as least_squares passes it


def _least_squares(
    residuals: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    maxiter: int,
    deadline: Deadline,
    jacobian: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Optimum:
    """Levenberg–Marquardt (MINPACK) from `start`, at most `maxiter` iterations (each one
    evaluation and a Jacobian: `jacobian`, else forward differences, k + 1 evaluations for k
    free values).

    scipy's least_squares(method="lm") with its defaults, calling the same MINPACK routine
    (lmder) with the same arguments and the same finite differences, so the optimum is the
    same bit for bit (tested). Without its wrapper, which cost a fifth of a fit on these
    small problems, and without the Jacobian it evaluates once more at the optimum for
    statistics we do not use (k + 1 evaluations of an exact likelihood).

    Of BFGS (R's arima), TRF and LM on 21 windows of 500 recorded TSLA bars, LM needed the fewest
    evaluations for optima of the same likelihood (except at (3, 3), where each stops in another
    local optimum).
    """
    if len(start) == 0:
        return Optimum(start, True)
    # The residuals at the last point asked for: MINPACK asks for the Jacobian where it has
    # just evaluated them, and forward differences start from them.
    last: list[np.ndarray] = []

    def evaluate(free: np.ndarray) -> np.ndarray:
        deadline.check()
        return np.atleast_1d(residuals(free.copy()))

    def fun(free: np.ndarray) -> np.ndarray:
        if not (last and np.array_equal(free, last[0])):
            last[:] = [free.copy(), evaluate(free)]
        return last[1].copy()

    def differences(free: np.ndarray) -> np.ndarray:
        return approx_derivative(evaluate, free.copy(), method="2-point", f0=fun(free))

    first = fun(start)
    if not np.all(np.isfinite(first)):
        raise ValueError("Residuals are not finite in the initial point.")
    if first.size < start.size:
        raise ValueError("fewer residuals than free values: Levenberg–Marquardt cannot fit")
    free, _info, status = _minpack._lmder(
        fun,
        differences if jacobian is None else jacobian,
        start.astype(float),
        (),
        True,  # full_output
        False,  # col_deriv: the Jacobian is (residuals × free values)
        TOLERANCE,
        TOLERANCE,
        TOLERANCE,
        maxiter,
        LM_STEP_BOUND,
        None,  # diag: scaled by the Jacobian's columns (least_squares' x_scale="jac")
    )
    return Optimum(free, status in CONVERGED_INFO)


def css_problem(
    x: np.ndarray, p: int, cond: int
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """The conditional sum of squares' residuals and their Jacobian (in closed form), as
    functions of the free values: one compiled call each."""
    values = _floats(x)

    def residuals(free: np.ndarray) -> np.ndarray:
        return kernels.css_residuals_at(values, free, p, cond)

    def jacobian(free: np.ndarray) -> np.ndarray:
        return kernels.css_jacobian_at(values, free, p, cond)

    return residuals, jacobian


def exact_problem(x: np.ndarray, p: int) -> Callable[[np.ndarray], np.ndarray]:
    """The exact likelihood's residuals (ExactProfile.scaled) as a function of the free values,
    one compiled call each (ml.arma_kernels.exact_residuals); a point numerically
    non-stationary at the edge of the region gets large residuals."""
    failed = np.full(len(x), 1e3 * float(np.std(x)) + 1.0)
    values = _floats(x)

    def residuals(free: np.ndarray) -> np.ndarray:
        try:
            return kernels.exact_residuals(values, free, p)
        except ValueError:
            return failed

    return residuals


def fit_css(x: np.ndarray, p: int, q: int, cond: int, maxiter: int, deadline: Deadline) -> Optimum:
    """Minimize the conditional sum of squares from zero coefficients (the Jacobian in closed
    form: most of a stepwise search is this fit, and differencing it cost k + 1 evaluations)."""
    residuals, jacobian = css_problem(x, p, cond)
    return _least_squares(residuals, np.zeros(p + q), maxiter, deadline, jacobian)


def fit_exact(
    x: np.ndarray, p: int, start: np.ndarray, maxiter: int, deadline: Deadline
) -> Optimum:
    """Maximize the exact likelihood from `start` (the CSS optimum: R's method="CSS-ML")."""
    return _least_squares(exact_problem(x, p), start, maxiter, deadline)


def css_jacobian(x: np.ndarray, ar: np.ndarray, ma: np.ndarray, cond: int) -> np.ndarray:
    """∂ css_residuals / ∂ (φ₁…φp, θ₁…θq), one column each (ml.arma_kernels.css_jacobian)."""
    return kernels.css_jacobian(_floats(x), _floats(ar), _floats(ma), cond)


def coefficients_jacobian(free: np.ndarray, p: int) -> np.ndarray:
    """∂ (φ, θ) / ∂ free: block diagonal, AR block then MA block (MA's sign flipped, as in
    `coefficients`); zero where a free value is clipped at FREE_BOUND."""
    return kernels.coefficients_jacobian(_floats(free), p)
