"""ARMA(p, q) around a mean: a stationary and invertible parametrization, conditional (CSS) and
exact residuals with the mean and variance profiled out, and their bounded least-squares fit."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.signal import lfilter
from statsmodels.tsa.innovations.arma_innovations import arma_innovations
from statsmodels.tsa.statespace.tools import constrain_stationary_univariate

LOG_2PI = math.log(2 * math.pi)
NO_COEFFICIENTS = np.zeros(0)
# |free| ≤ 30 keeps each partial autocorrelation within 1 − 6e-4 of ±1: the innovations
# algorithm still sees a stationary process, and such a fit is rejected later as near a unit root.
FREE_BOUND = 30.0


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
    free = np.clip(free, -FREE_BOUND, FREE_BOUND)
    ar = constrain_stationary_univariate(free[:p]) if p else NO_COEFFICIENTS
    ma = -constrain_stationary_univariate(free[p:]) if len(free) > p else NO_COEFFICIENTS
    return ar, ma


def css_residuals(x: np.ndarray, ar: np.ndarray, ma: np.ndarray, cond: int) -> np.ndarray:
    """Conditional residuals of x − mean, as R's arima(method="CSS"): from index `cond` (≥ p),
    the MA recursion started from zeros. They are linear in the mean, whose least-squares
    value is therefore solved, not searched."""
    ar_part = x[cond:].copy()
    for i, phi in enumerate(ar, start=1):
        ar_part -= phi * x[cond - i : len(x) - i]
    poly_ma = np.r_[1.0, ma]
    ex = lfilter([1.0], poly_ma, ar_part)
    e1 = lfilter([1.0], poly_ma, np.full(len(ar_part), 1.0 - ar.sum()))
    return ex - (ex @ e1 / (e1 @ e1)) * e1


@dataclass(frozen=True)
class ExactProfile:
    """The exact Gaussian likelihood at given coefficients, the mean and variance profiled."""

    loglike: float
    mean: float
    sigma2: float
    innovations: np.ndarray  # one-step prediction errors of x − mean
    scaled: np.ndarray  # residuals whose sum of squares the likelihood decreases in


def exact_profile(x: np.ndarray, ar: np.ndarray, ma: np.ndarray) -> ExactProfile:
    """Innovations algorithm (statsmodels; exact for a stationary ARMA) on x and a column of ones
    together, so the GLS mean and the ML variance follow in closed form.

    With σ² profiled, −2·loglike = n·log(Σ e²/v · (Πv)^(1/n)) + const: maximizing the likelihood
    is a least-squares problem in the residuals e·(Πv)^(1/2n)/√v.
    """
    u, v = arma_innovations(np.column_stack([x, np.ones_like(x)]), ar, ma)
    ux, u1 = u[:, 0], u[:, 1]
    mean = float(np.sum(ux * u1 / v) / np.sum(u1 * u1 / v))
    innovations = ux - mean * u1
    standardized = innovations / np.sqrt(v)
    sigma2 = float(standardized @ standardized / len(x))
    mean_log_v = float(np.mean(np.log(v)))
    loglike = -0.5 * len(x) * (LOG_2PI + math.log(sigma2) + 1.0 + mean_log_v)
    return ExactProfile(loglike, mean, sigma2, innovations, standardized * math.exp(mean_log_v / 2))


@dataclass(frozen=True)
class Optimum:
    """Where a fit stopped: the free values and whether the optimizer's tolerances were met."""

    free: np.ndarray
    converged: bool


def _least_squares(
    residuals: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    maxiter: int,
    deadline: Deadline,
) -> Optimum:
    """Levenberg–Marquardt (MINPACK) from `start`, at most `maxiter` iterations (each one
    evaluation and a forward-difference Jacobian: k + 1 evaluations for k free values).

    Of BFGS (R's arima), TRF and LM on 21 windows of 500 recorded TSLA bars, LM needed the fewest
    evaluations for optima of the same likelihood (except at (3, 3), where each stops in another
    local optimum).
    """
    if len(start) == 0:
        return Optimum(start, True)

    def checked(free: np.ndarray) -> np.ndarray:
        deadline.check()
        return residuals(free)

    # For "lm" scipy counts max_nfev without the Jacobian's evaluations: about one per iteration.
    result = least_squares(checked, start, method="lm", max_nfev=maxiter)
    return Optimum(result.x, result.status > 0)


def fit_css(x: np.ndarray, p: int, q: int, cond: int, maxiter: int, deadline: Deadline) -> Optimum:
    """Minimize the conditional sum of squares from zero coefficients."""

    def residuals(free: np.ndarray) -> np.ndarray:
        ar, ma = coefficients(free, p)
        return css_residuals(x, ar, ma, cond)

    return _least_squares(residuals, np.zeros(p + q), maxiter, deadline)


def fit_exact(
    x: np.ndarray, p: int, start: np.ndarray, maxiter: int, deadline: Deadline
) -> Optimum:
    """Maximize the exact likelihood from `start` (the CSS optimum: R's method="CSS-ML")."""
    failed = np.full(len(x), 1e3 * float(np.std(x)) + 1.0)

    def residuals(free: np.ndarray) -> np.ndarray:
        ar, ma = coefficients(free, p)
        try:
            return exact_profile(x, ar, ma).scaled
        except ValueError:  # numerically non-stationary at the edge of the region
            return failed

    return _least_squares(residuals, start, maxiter, deadline)
