"""ARIMA(p, d, q) on a window of log closes, with a constant (d = 0) or a drift (d = 1): the fit of
a given order by CSS then exact maximum likelihood, its AICc, and its forecast with intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from statsmodels.tsa.arima_process import arma2ma

from ml.arma import Deadline, coefficients, exact_profile, fit_css, fit_exact
from ml.outcome import Forecast

# auto.arima rejects a fit with an AR or MA root this close to the unit circle (|root| < 1.01).
MIN_ROOT_MODULUS = 1.01


class ArimaError(Exception):
    """A window or a fit the model cannot use; the message says which."""


@dataclass(frozen=True)
class ArimaFit:
    """A fitted ARIMA on log closes, with what its forecast needs (the window's tail)."""

    order: tuple[int, int, int]
    ar: tuple[float, ...]
    ma: tuple[float, ...]
    mean: float  # the constant (d = 0) or the drift per bar (d = 1), on the log scale
    sigma2: float  # ML innovation variance
    loglike: float
    aicc: float
    converged: bool
    min_root: float  # smallest modulus of the AR and MA roots (inf without either)
    tail: tuple[float, ...]  # last p values of the differenced window, minus the mean
    innovations: tuple[float, ...]  # last q one-step innovations
    last: float  # the window's last log close

    @property
    def near_unit_root(self) -> bool:
        return self.min_root < MIN_ROOT_MODULUS


def differenced(y: np.ndarray, d: int) -> np.ndarray:
    return np.diff(y) if d else y


def aicc(loglike: float, k: int, n: int) -> float:
    """AICc with k estimated parameters (σ² counted, as R) over n observations."""
    if n - k - 1 <= 0:
        return math.inf
    return -2 * loglike + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def parameter_count(p: int, q: int) -> int:
    """AR and MA coefficients, the constant or drift, and σ²."""
    return p + q + 2


def min_root_modulus(ar: np.ndarray, ma: np.ndarray) -> float:
    """Smallest |root| of φ(z) = 1 − Σφᵢzⁱ and θ(z) = 1 + Σθⱼzʲ (inf when both are 1)."""
    moduli = [math.inf]
    for poly in (np.r_[1.0, -ar], np.r_[1.0, ma]):
        if len(poly) > 1 and np.any(poly[1:]):
            moduli.extend(np.abs(np.roots(poly[::-1])))
    return float(min(moduli))


def fit_order(
    y: np.ndarray, order: tuple[int, int, int], maxiter: int, deadline: Deadline
) -> ArimaFit:
    """Fit `order` to the log closes `y`: CSS from zero coefficients, then exact ML from there
    (R's method="CSS-ML"), the mean profiled out by GLS at each step. Deterministic."""
    p, d, q = order
    x = differenced(y, d)
    if len(x) <= parameter_count(p, q) + 1:  # AICc needs n − k − 1 > 0
        raise ArimaError(f"ARIMA{order} needs at least {parameter_count(p, q) + 2 + d} bars")
    if not np.ptp(x) > 0:
        raise ArimaError("the differenced window is constant: no noise to model")
    start = fit_css(x, p, q, p, maxiter, deadline)
    optimum = fit_exact(x, p, start.free, maxiter, deadline)
    ar, ma = coefficients(optimum.free, p)
    profile = exact_profile(x, ar, ma)
    if not (math.isfinite(profile.loglike) and profile.sigma2 > 0):
        raise ArimaError(f"ARIMA{order}: the likelihood is not finite")
    return ArimaFit(
        order=order,
        ar=tuple(float(v) for v in ar),
        ma=tuple(float(v) for v in ma),
        mean=profile.mean,
        sigma2=profile.sigma2,
        loglike=profile.loglike,
        aicc=aicc(profile.loglike, parameter_count(p, q), len(x)),
        converged=optimum.converged,
        min_root=min_root_modulus(ar, ma),
        tail=tuple(float(v) for v in (x[len(x) - p :] - profile.mean)) if p else (),
        innovations=tuple(float(v) for v in profile.innovations[len(x) - q :]) if q else (),
        last=float(y[-1]),
    )


def forecast(fit: ArimaFit, horizon: int) -> Forecast:
    """Log-scale forecast of `horizon` steps, back-transformed.

    The ARMA part runs its recursion on the last p values and the last q innovations (future
    innovations zero); d = 1 adds the steps to the last log close. The variance is
    σ²·Σψⱼ² over the MA(∞) weights of φ(B)(1 − B)^d and θ(B), as R's predict.Arima for a long
    window (parameter uncertainty ignored, like R and statsforecast).
    """
    p, d, q = fit.order
    ar, ma = np.array(fit.ar), np.array(fit.ma)
    w = np.r_[fit.tail, np.zeros(horizon)]
    e = np.r_[fit.innovations, np.zeros(horizon)]
    for h in range(horizon):
        w[p + h] = sum(ar[i] * w[p + h - 1 - i] for i in range(p)) + sum(
            ma[j] * e[q + h - 1 - j] for j in range(q)
        )
    x = w[p:] + fit.mean
    log_mean = fit.last + np.cumsum(x) if d else x
    ar_poly = np.r_[1.0, -ar]
    if d:
        ar_poly = np.convolve(ar_poly, [1.0, -1.0])
    psi = arma2ma(ar_poly, np.r_[1.0, ma], lags=horizon)
    log_sd = np.sqrt(fit.sigma2 * np.cumsum(psi**2))
    return Forecast.from_log_scale("arima", log_mean, log_sd, order=fit.order, aicc=fit.aicc)
