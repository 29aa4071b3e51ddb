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
from scipy.signal import _sigtools
from statsmodels.tsa.innovations import _arma_innovations as _kernels

LOG_2PI = math.log(2 * math.pi)
NO_COEFFICIENTS = np.zeros(0)
ONE = np.ones(1)
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
    values = [min(max(float(v), -FREE_BOUND), FREE_BOUND) for v in free]
    ar = np.array(_constrain_stationary(values[:p])) if p else NO_COEFFICIENTS
    ma = -np.array(_constrain_stationary(values[p:])) if len(values) > p else NO_COEFFICIENTS
    return ar, ma


def _constrain_stationary(free: list[float]) -> list[float]:
    """statsmodels' constrain_stationary_univariate, the same operations in the same order on
    plain floats (bit for bit: tested), without numpy's per-call cost on at most three values:
    r = f/√(1 + f²); y[k, i] = y[k−1, i] + r_k·y[k−1, k−i−1], y[k, k] = r_k; result −y[n−1]."""
    r = [v / math.sqrt(1.0 + v * v) for v in free]
    y: list[float] = []
    for k in range(len(free)):
        y = [y[i] + r[k] * y[k - i - 1] for i in range(k)] + [r[k]]
    return [-v for v in y]


def with_one(coefs: np.ndarray) -> np.ndarray:
    """[1, coefs…]: a lag polynomial from its coefficients (np.r_ cost more than the filter)."""
    return np.concatenate((ONE, coefs))


def inverse_filter(poly: np.ndarray, x: np.ndarray, axis: int = -1) -> np.ndarray:
    """poly(B)⁻¹ x along `axis`, poly[0] = 1: scipy.signal.lfilter([1], poly, x, axis) through its
    own kernel, without lfilter's per-call checks (most of its cost on these short series;
    the equality is tested). poly = 1 (no lag) is the identity."""
    if len(poly) == 1:
        return np.array(x, dtype=float)
    return _sigtools._linear_filter(ONE, poly, x, axis)


def css_residuals(x: np.ndarray, ar: np.ndarray, ma: np.ndarray, cond: int) -> np.ndarray:
    """Conditional residuals of x − mean, as R's arima(method="CSS"): from index `cond` (≥ p),
    the MA recursion started from zeros. They are linear in the mean, whose least-squares
    value is therefore solved, not searched."""
    ar_part = x[cond:].copy()
    for i, phi in enumerate(ar, start=1):
        ar_part -= phi * x[cond - i : len(x) - i]
    poly_ma = with_one(ma)
    ex = inverse_filter(poly_ma, ar_part)
    e1 = inverse_filter(poly_ma, np.full(len(ar_part), 1.0 - ar.sum()))
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
    ar_poly, ma_poly = with_one(-ar), with_one(ma)
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
        out[m:] = _sigtools._linear_filter(ONE, ar_poly, np.zeros(nobs - m), -1, np.array(state))[0]
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
    functions of the free values."""

    def residuals(free: np.ndarray) -> np.ndarray:
        ar, ma = coefficients(free, p)
        return css_residuals(x, ar, ma, cond)

    def jacobian(free: np.ndarray) -> np.ndarray:
        ar, ma = coefficients(free, p)
        return css_jacobian(x, ar, ma, cond) @ coefficients_jacobian(free, p)

    return residuals, jacobian


def exact_problem(x: np.ndarray, p: int) -> Callable[[np.ndarray], np.ndarray]:
    """The exact likelihood's residuals (ExactProfile.scaled) as a function of the free values;
    a point numerically non-stationary at the edge of the region gets large residuals."""
    failed = np.full(len(x), 1e3 * float(np.std(x)) + 1.0)

    def residuals(free: np.ndarray) -> np.ndarray:
        ar, ma = coefficients(free, p)
        try:
            return exact_profile(x, ar, ma).scaled
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
    """∂ css_residuals / ∂ (φ₁…φp, θ₁…θq), one column each.

    The residuals are r = P·e with e = θ(B)⁻¹(φ(B)x) and P the projection off u = θ(B)⁻¹·1 (the
    mean's column; its (1 − Σφ) scale cancels in P). So ∂r/∂φᵢ = −P·θ(B)⁻¹Bⁱx, and from
    θ(B)·e = φ(B)x, ∂e/∂θⱼ = −θ(B)⁻¹Bʲe (likewise u), with P's own change for θ.
    """
    p, q = len(ar), len(ma)
    n = len(x) - cond
    poly_ma = with_one(ma)
    ar_part = x[cond:].copy()
    for i, phi in enumerate(ar, start=1):
        ar_part -= phi * x[cond - i : len(x) - i]
    # e, u, the lagged x for φ, and the shifted e and u for θ: filtered in one call.
    columns = np.zeros((n, 2 + p + 2 * q))
    columns[:, 0], columns[:, 1] = ar_part, 1.0
    for i in range(1, p + 1):
        columns[:, 1 + i] = x[cond - i : len(x) - i]
    filtered = inverse_filter(poly_ma, columns[:, : 2 + p], axis=0)
    e, u = filtered[:, 0], filtered[:, 1]
    for j in range(1, q + 1):
        columns[j:, 1 + p + j] = e[:-j]
        columns[j:, 1 + p + q + j] = u[:-j]
    shifted = inverse_filter(poly_ma, columns[:, 2 + p :], axis=0) if q else columns[:, :0]
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
