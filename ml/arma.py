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
from statsmodels.tsa.innovations import _arma_innovations as _kernels
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
    (ux, u1), v = innovations((x, np.ones_like(x)), ar, ma)
    mean = float(np.sum(ux * u1 / v) / np.sum(u1 * u1 / v))
    errors = ux - mean * u1
    standardized = errors / np.sqrt(v)
    sigma2 = float(standardized @ standardized / len(x))
    mean_log_v = float(np.mean(np.log(v)))
    loglike = -0.5 * len(x) * (LOG_2PI + math.log(sigma2) + 1.0 + mean_log_v)
    return ExactProfile(loglike, mean, sigma2, errors, standardized * math.exp(mean_log_v / 2))


def innovations(
    series: tuple[np.ndarray, ...], ar: np.ndarray, ma: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """statsmodels' `arma_innovations` (σ² = 1) of each of `series` (float64, one length): their
    one-step prediction errors and the errors' variances. Its own kernels and equations, without
    its per-call overhead, which was most of an exact likelihood evaluation (the equality is
    tested, so a statsmodels upgrade that moves these private kernels fails there first)."""
    nobs = len(series[0])
    ar_poly, ma_poly = np.r_[1.0, -ar], np.r_[1.0, ma]
    acov = arma_autocovariances(ar_poly, ma_poly, nobs)
    acovf, acovf2 = _kernels.darma_transformed_acovf_fast(ar_poly, ma_poly, acov)
    theta, v = _kernels.darma_innovations_algo_fast(nobs, ar, ma, acovf, acovf2)
    v = np.asarray(v)
    if np.any(v < 0) or not np.isfinite(theta).all() or not np.isfinite(v).all():
        raise ValueError("the ARMA is not stationary: its innovations variance is not positive")
    return [np.asarray(_kernels.darma_innovations_filter(y, ar, ma, theta)) for y in series], v


def arma_autocovariances(ar_poly: np.ndarray, ma_poly: np.ndarray, nobs: int) -> np.ndarray:
    """The ARMA's autocovariances γ(0…nobs−1) at σ² = 1, as statsmodels' `arma_acovf`: the first
    m = max(p, q) + 1 from the linear system of Brockwell & Davis (3.3.8), the rest by the AR
    recursion (3.3.9). The small system is solved in plain floats (at most 4 × 4: numpy's
    per-call cost was most of the time), so values agree with statsmodels' to rounding."""
    phi = [-float(c) for c in ar_poly[1:]]  # φ(B) = 1 − φ1·B − …
    theta = [float(c) for c in ma_poly]  # θ(B) = 1 + θ1·B + …, θ0 = 1
    p, q = len(phi), len(theta) - 1
    m = max(p, q) + 1
    out = np.zeros(max(nobs, m))
    if p == q == 0:
        out[0] = 1.0
        return out[:nobs]
    if p and not _stationary(phi):
        raise ValueError("the ARMA is not stationary: an AR root is on or inside the unit circle")
    psi = [1.0]  # MA(∞) weights ψ0…ψ(m−1)
    for j in range(1, m):
        psi.append(
            (theta[j] if j <= q else 0.0)
            + sum(phi[i - 1] * psi[j - i] for i in range(1, min(j, p) + 1))
        )
    # γ(k) − Σ φi·γ(|k − i|) = Σ_{j ≥ k} θj·ψ(j−k), k = 0…m−1 (unknowns γ(0…m−1)).
    system = []
    for k in range(m):
        row = [0.0] * m
        row[k] += 1.0
        for i in range(1, p + 1):
            row[abs(k - i)] -= phi[i - 1]
        system.append([*row, sum(theta[j] * psi[j - k] for j in range(k, q + 1))])
    first = _solve(system)
    out[:m] = first
    if nobs > m and p:
        # γ(k) = Σ φi·γ(k − i) for k ≥ m: the AR filter continued from γ(m−1…m−p).
        state = [sum(phi[i - 1] * first[m + k - i] for i in range(k + 1, p + 1)) for k in range(p)]
        out[m:] = lfilter([1.0], ar_poly, np.zeros(nobs - m), zi=np.array(state))[0]
    return out[:nobs]


def _stationary(phi: list[float]) -> bool:
    """Whether φ(B) = 1 − Σ φi·Bⁱ has every root outside the unit circle: the Levinson step-down
    (Schur–Cohn) gives its partial autocorrelations, all inside (−1, 1) exactly then."""
    coefs = list(phi)
    while coefs:
        last = coefs[-1]
        if not abs(last) < 1.0:
            return False
        scale = 1.0 - last * last
        k = len(coefs)
        coefs = [(coefs[i] + last * coefs[k - 2 - i]) / scale for i in range(k - 1)]
    return True


def _solve(system: list[list[float]]) -> list[float]:
    """Gaussian elimination with partial pivoting of an augmented n × (n + 1) system (n ≤ 4)."""
    n = len(system)
    rows = [list(row) for row in system]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        if rows[pivot][col] == 0.0:
            raise ValueError("the ARMA is not stationary: its autocovariances are singular")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, n):
            factor = rows[r][col] / rows[col][col]
            for c in range(col, n + 1):
                rows[r][c] -= factor * rows[col][c]
    solution = [0.0] * n
    for r in range(n - 1, -1, -1):
        tail = sum(rows[r][c] * solution[c] for c in range(r + 1, n))
        solution[r] = (rows[r][n] - tail) / rows[r][r]
    return solution


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
    jacobian: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Optimum:
    """Levenberg–Marquardt (MINPACK) from `start`, at most `maxiter` iterations (each one
    evaluation and a Jacobian: `jacobian`, else forward differences, k + 1 evaluations for k
    free values).

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
    jac = "2-point" if jacobian is None else jacobian
    result = least_squares(checked, start, jac=jac, method="lm", max_nfev=maxiter)  # type: ignore[arg-type]
    return Optimum(result.x, result.status > 0)


def fit_css(x: np.ndarray, p: int, q: int, cond: int, maxiter: int, deadline: Deadline) -> Optimum:
    """Minimize the conditional sum of squares from zero coefficients (the Jacobian in closed
    form: most of a stepwise search is this fit, and differencing it cost k + 1 evaluations)."""

    def residuals(free: np.ndarray) -> np.ndarray:
        ar, ma = coefficients(free, p)
        return css_residuals(x, ar, ma, cond)

    def jacobian(free: np.ndarray) -> np.ndarray:
        ar, ma = coefficients(free, p)
        return css_jacobian(x, ar, ma, cond) @ coefficients_jacobian(free, p)

    return _least_squares(residuals, np.zeros(p + q), maxiter, deadline, jacobian)


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


def css_jacobian(x: np.ndarray, ar: np.ndarray, ma: np.ndarray, cond: int) -> np.ndarray:
    """∂ css_residuals / ∂ (φ₁…φp, θ₁…θq), one column each.

    The residuals are r = P·e with e = θ(B)⁻¹(φ(B)x) and P the projection off u = θ(B)⁻¹·1 (the
    mean's column; its (1 − Σφ) scale cancels in P). So ∂r/∂φᵢ = −P·θ(B)⁻¹Bⁱx, and from
    θ(B)·e = φ(B)x, ∂e/∂θⱼ = −θ(B)⁻¹Bʲe (likewise u), with P's own change for θ.
    """
    p, q = len(ar), len(ma)
    n = len(x) - cond
    poly_ma = np.r_[1.0, ma]
    ar_part = x[cond:].copy()
    for i, phi in enumerate(ar, start=1):
        ar_part -= phi * x[cond - i : len(x) - i]
    # e, u, the lagged x for φ, and the shifted e and u for θ: filtered in one call.
    columns = np.zeros((n, 2 + p + 2 * q))
    columns[:, 0], columns[:, 1] = ar_part, 1.0
    for i in range(1, p + 1):
        columns[:, 1 + i] = x[cond - i : len(x) - i]
    filtered = lfilter([1.0], poly_ma, columns[:, : 2 + p], axis=0)
    e, u = filtered[:, 0], filtered[:, 1]
    for j in range(1, q + 1):
        columns[j:, 1 + p + j] = e[:-j]
        columns[j:, 1 + p + q + j] = u[:-j]
    shifted = lfilter([1.0], poly_ma, columns[:, 2 + p :], axis=0) if q else columns[:, :0]
    uu = u @ u
    s = (e @ u) / uu
    jac = np.empty((n, p + q))
    if p:
        de = -filtered[:, 2:]
        jac[:, :p] = de - np.outer(u, (u @ de) / uu)
    for j in range(q):
        de, du = -shifted[:, j], -shifted[:, q + j]
        ds = (de @ u + e @ du) / uu - 2.0 * s * (u @ du) / uu
        jac[:, p + j] = de - ds * u - s * du
    return jac


def coefficients_jacobian(free: np.ndarray, p: int) -> np.ndarray:
    """∂ (φ, θ) / ∂ free: block diagonal, AR block then MA block (MA's sign flipped, as in
    `coefficients`); zero where a free value is clipped at FREE_BOUND."""
    k = len(free)
    jac = np.zeros((k, k))
    if p:
        jac[:p, :p] = _monahan_jacobian(free[:p])
    if k > p:
        jac[p:, p:] = -_monahan_jacobian(free[p:])
    return jac


def _monahan_jacobian(free: np.ndarray) -> np.ndarray:
    """∂ constrain_stationary_univariate(free) / ∂ free, forward mode through its recursion
    (y[k, i] = y[k−1, i] + r_k·y[k−1, k−i−1], y[k, k] = r_k, r = f/√(1 + f²); result −y[n−1])."""
    n = len(free)
    values = [float(v) for v in free]
    r = [v / math.sqrt(1.0 + v * v) for v in values]
    dr = [0.0 if abs(v) > FREE_BOUND else (1.0 + v * v) ** -1.5 for v in values]
    y: list[float] = []  # row k − 1 of the recursion
    dy: list[list[float]] = []  # its derivatives: dy[i][m] = ∂y[i]/∂r_m
    for k in range(n):
        row = [y[i] + r[k] * y[k - i - 1] for i in range(k)] + [r[k]]
        drow = [
            [
                dy[i][m] + r[k] * dy[k - i - 1][m] + (y[k - i - 1] if m == k else 0.0)
                for m in range(n)
            ]
            for i in range(k)
        ]
        drow.append([1.0 if m == k else 0.0 for m in range(n)])
        y, dy = row, drow
    return -np.array(dy) * np.array(dr)
