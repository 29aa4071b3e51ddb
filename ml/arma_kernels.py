"""Compiled kernels (numba) of the exact ARMA likelihood: the partial-autocorrelation map, the
autocovariances, the innovations algorithm and filter, and the profiled residuals, in one call.

Why compiled: an exact fit evaluates the likelihood k + 1 times per iteration (forward
differences), and on windows of 150–500 values almost all of a Python evaluation was call
overhead around small arrays (statsmodels' own Cython kernels were a third of it). The
innovations kernels are statsmodels' (`statsmodels/tsa/innovations/_arma_innovations.pyx.in`,
BSD-3-Clause) translated line by line, so the numbers agree with `arma_innovations` (tested).
`cache=True`: compiled once per checkout (or per NUMBA_CACHE_DIR), loaded by later processes.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# |free| ≤ 30 keeps each partial autocorrelation within 1 − 6e-4 of ±1: the innovations
# algorithm still sees a stationary process, and such a fit is rejected later as near a unit root.
FREE_BOUND = 30.0


@nb.njit(cache=True)
def constrain_stationary(free: np.ndarray) -> np.ndarray:
    """statsmodels' constrain_stationary_univariate of `free` clipped to ±FREE_BOUND
    (Monahan): r = f/√(1 + f²); y[k, i] = y[k−1, i] + r_k·y[k−1, k−i−1], y[k, k] = r_k; −y[n−1]."""
    n = len(free)
    r = np.empty(n)
    for k in range(n):
        v = min(max(free[k], -FREE_BOUND), FREE_BOUND)
        r[k] = v / math.sqrt(1.0 + v * v)
    y = np.zeros(n)
    previous = np.zeros(n)
    for k in range(n):
        for i in range(k):
            y[i] = previous[i] + r[k] * previous[k - i - 1]
        y[k] = r[k]
        previous[: k + 1] = y[: k + 1]
    return -y


@nb.njit(cache=True)
def _stationary(phi: np.ndarray) -> bool:
    """Levinson step-down (Schur–Cohn): every partial autocorrelation of φ inside (−1, 1)."""
    coefs = phi.copy()
    k = len(coefs)
    while k > 0:
        last = coefs[k - 1]
        if not abs(last) < 1.0:
            return False
        scale = 1.0 - last * last
        stepped = np.empty(k - 1)
        for i in range(k - 1):
            stepped[i] = (coefs[i] + last * coefs[k - 2 - i]) / scale
        coefs = stepped
        k -= 1
    return True


@nb.njit(cache=True)
def autocovariances(phi: np.ndarray, theta: np.ndarray, nobs: int) -> np.ndarray:
    """γ(0…nobs−1) at σ² = 1 of φ(B)x = θ(B)e (φ(B) = 1 − ΣφᵢBⁱ, θ(B) = 1 + ΣθⱼBʲ): the first
    m = max(p, q) + 1 from Brockwell & Davis (3.3.8) by Gaussian elimination with partial
    pivoting, the rest by the AR recursion (3.3.9)."""
    p, q = len(phi), len(theta)
    m = max(p, q) + 1
    out = np.zeros(max(nobs, m))
    if p == 0 and q == 0:
        out[0] = 1.0
        return out[:nobs]
    if p > 0 and not _stationary(phi):
        raise ValueError("the ARMA is not stationary: an AR root is on or inside the unit circle")
    th = np.zeros(m)  # θ0…θ(m−1), zero past q
    th[0] = 1.0
    for j in range(q):
        th[j + 1] = theta[j]
    psi = np.zeros(m)  # MA(∞) weights
    psi[0] = 1.0
    for j in range(1, m):
        total = 0.0
        for i in range(1, min(j, p) + 1):
            total += phi[i - 1] * psi[j - i]
        psi[j] = th[j] + total
    system = np.zeros((m, m + 1))
    for k in range(m):
        system[k, k] += 1.0
        for i in range(1, p + 1):
            system[k, abs(k - i)] -= phi[i - 1]
        rhs = 0.0
        for j in range(k, q + 1):
            rhs += th[j] * psi[j - k]
        system[k, m] = rhs
    for col in range(m):
        pivot = col
        for r in range(col + 1, m):
            if abs(system[r, col]) > abs(system[pivot, col]):
                pivot = r
        if system[pivot, col] == 0.0:
            raise ValueError("the ARMA is not stationary: its autocovariances are singular")
        if pivot != col:
            for c in range(m + 1):
                system[col, c], system[pivot, c] = system[pivot, c], system[col, c]
        for r in range(col + 1, m):
            factor = system[r, col] / system[col, col]
            for c in range(col, m + 1):
                system[r, c] -= factor * system[col, c]
    for r in range(m - 1, -1, -1):
        tail = 0.0
        for c in range(r + 1, m):
            tail += system[r, c] * out[c]
        out[r] = (system[r, m] - tail) / system[r, r]
    for k in range(m, nobs):
        total = 0.0
        for i in range(1, p + 1):
            total += phi[i - 1] * out[k - i]
        out[k] = total
    return out[:nobs]


@nb.njit(cache=True)
def _transformed_acovf(
    phi: np.ndarray, theta: np.ndarray, acov: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """statsmodels' darma_transformed_acovf_fast (B&D 3.3.3), φ and θ without their lag 0."""
    nobs = len(acov)
    p, q = len(phi), len(theta)
    m = max(p, q)
    m2 = 2 * m
    n = min(m2, nobs)
    acovf = np.zeros((m2, m2))
    acovf2 = np.zeros(max(nobs - m, 0))
    for i in range(m):
        for j in range(i + 1):
            acovf[i, j] = acov[i - j]
            if i != j:
                acovf[j, i] = acov[i - j]
    if nobs > m:
        for j in range(m):
            for i in range(m, m2):
                acovf[i, j] = acov[i - j]
                for r in range(1, p + 1):
                    acovf[i, j] = acovf[i, j] - (phi[r - 1] * acov[abs(r - (i - j))])
        for i in range(m, m2):
            for j in range(m):
                acovf[j, i] = acovf[i, j]
        for i in range(nobs - m):
            for r in range(q + 1 - i):
                ma_r = 1.0 if r == 0 else theta[r - 1]
                ma_ri = 1.0 if r + i == 0 else theta[r + i - 1]
                acovf2[i] = acovf2[i] + ma_r * ma_ri
    return acovf[:n, :n], acovf2


@nb.njit(cache=True)
def _innovations_algo(
    nobs: int, p: int, q: int, acovf: np.ndarray, acovf2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """statsmodels' darma_innovations_algo_fast (B&D 2.5.2, 5.2.7)."""
    m = max(p, q)
    m2 = 2 * m
    v = np.zeros(nobs)
    theta = np.zeros((nobs, m + 1))
    v[0] = acovf[0, 0] if m > 0 else acovf2[0]
    for n in range(nobs - 1):
        n1 = n + 1
        start = 0 if n < m else n + 1 - q
        for k in range(start, n + 1):
            if n >= m and n - k >= q:
                continue
            if n + 1 < m2 and k < m:
                theta[n1, n - k] = acovf[n + 1, k]
            else:
                theta[n1, n - k] = acovf2[n + 1 - k]
            start2 = 0 if n < m else n - m
            for j in range(start2, k):
                if n - j < m + 1:
                    theta[n1, n - k] = (
                        theta[n1, n - k] - theta[k, k - j - 1] * theta[n1, n - j] * v[j]
                    )
            theta[n1, n - k] = theta[n1, n - k] / v[k]
        v[n + 1] = acovf[n + 1, n + 1] if n + 1 < m else acovf2[0]
        for i in range(max(0, n - (m + 1) + 2), n + 1):
            v[n + 1] = v[n + 1] - theta[n1, n - i] ** 2 * v[i]
    return theta, v


@nb.njit(cache=True)
def _innovations_filter(
    endog: np.ndarray, phi: np.ndarray, q: int, theta: np.ndarray
) -> np.ndarray:
    """statsmodels' darma_innovations_filter: one-step prediction errors of `endog`."""
    p = len(phi)
    m = max(p, q)
    nobs = theta.shape[0]
    u = np.zeros(nobs)
    u[0] = endog[0]
    for i in range(1, nobs):
        hat = 0.0
        if i < m:
            for j in range(i):
                hat = hat + theta[i, j] * u[i - j - 1]
        else:
            for j in range(p):
                hat = hat + phi[j] * endog[i - j - 1]
            for j in range(q):
                hat = hat + theta[i, j] * u[i - j - 1]
        u[i] = endog[i] - hat
    return u


@nb.njit(cache=True)
def innovations(
    x: np.ndarray, phi: np.ndarray, theta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`arma_innovations` (σ² = 1) of x and of a column of ones: their one-step prediction
    errors and the errors' variances. ValueError when the ARMA is not stationary."""
    nobs = len(x)
    acov = autocovariances(phi, theta, nobs)
    acovf, acovf2 = _transformed_acovf(phi, theta, acov)
    coefficients, v = _innovations_algo(nobs, len(phi), len(theta), acovf, acovf2)
    for i in range(nobs):
        if not (v[i] >= 0.0 and math.isfinite(v[i])):
            raise ValueError("the ARMA is not stationary: its innovations variance is not positive")
    if not np.all(np.isfinite(coefficients)):
        raise ValueError("the ARMA is not stationary: its innovations variance is not positive")
    ux = _innovations_filter(x, phi, len(theta), coefficients)
    u1 = _innovations_filter(np.ones(nobs), phi, len(theta), coefficients)
    return ux, u1, v


@nb.njit(cache=True)
def profile(
    x: np.ndarray, phi: np.ndarray, theta: np.ndarray
) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """The exact likelihood with the mean (GLS) and the variance (ML) profiled out: (mean,
    sigma2, the mean log variance of the innovations, the innovations of x − mean, and the
    residuals whose sum of squares the likelihood decreases in)."""
    ux, u1, v = innovations(x, phi, theta)
    nobs = len(x)
    num = 0.0
    den = 0.0
    log_v = 0.0
    for i in range(nobs):
        num += ux[i] * u1[i] / v[i]
        den += u1[i] * u1[i] / v[i]
        log_v += math.log(v[i])
    mean = num / den
    mean_log_v = log_v / nobs
    errors = ux - mean * u1
    standardized = errors / np.sqrt(v)
    sigma2 = 0.0
    for i in range(nobs):
        sigma2 += standardized[i] * standardized[i]
    sigma2 /= nobs
    return mean, sigma2, mean_log_v, errors, standardized * math.exp(mean_log_v / 2)


@nb.njit(cache=True)
def exact_residuals(x: np.ndarray, free: np.ndarray, p: int) -> np.ndarray:
    """`profile`'s residuals at free values (AR first, then MA): one compiled call per
    evaluation of the optimizer."""
    phi, theta = coefficients(free, p)
    return profile(x, phi, theta)[4]


# -- the conditional sum of squares (CSS): most of an order search -------------------------------


@nb.njit(cache=True)
def _ma_inverse(theta: np.ndarray, values: np.ndarray) -> np.ndarray:
    """θ(B)⁻¹ values from zero initial state: y[t] = values[t] − Σ θⱼ·y[t−j]."""
    out = np.empty(len(values))
    for t in range(len(values)):
        total = values[t]
        for j in range(1, min(len(theta), t) + 1):
            total -= theta[j - 1] * out[t - j]
        out[t] = total
    return out


@nb.njit(cache=True)
def _ar_part(x: np.ndarray, phi: np.ndarray, cond: int) -> np.ndarray:
    """φ(B)x from index `cond` on."""
    out = x[cond:].copy()
    for i in range(1, len(phi) + 1):
        for t in range(len(out)):
            out[t] -= phi[i - 1] * x[cond + t - i]
    return out


@nb.njit(cache=True)
def css_residuals(x: np.ndarray, phi: np.ndarray, theta: np.ndarray, cond: int) -> np.ndarray:
    """Conditional residuals of x − mean, as R's arima(method="CSS"): from index `cond` (≥ p),
    the MA recursion started from zeros; linear in the mean, whose least-squares value is
    solved, not searched."""
    ex = _ma_inverse(theta, _ar_part(x, phi, cond))
    e1 = _ma_inverse(theta, np.full(len(ex), 1.0 - phi.sum()))
    return ex - (ex @ e1 / (e1 @ e1)) * e1


@nb.njit(cache=True)
def coefficients(free: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """AR and MA coefficients from free values (AR first): φ = map(free[:p]), θ = −map(free[p:])."""
    phi = constrain_stationary(free[:p]) if p > 0 else np.zeros(0)
    theta = -constrain_stationary(free[p:]) if len(free) > p else np.zeros(0)
    return phi, theta


@nb.njit(cache=True)
def css_residuals_at(x: np.ndarray, free: np.ndarray, p: int, cond: int) -> np.ndarray:
    phi, theta = coefficients(free, p)
    return css_residuals(x, phi, theta, cond)


@nb.njit(cache=True)
def css_jacobian(x: np.ndarray, phi: np.ndarray, theta: np.ndarray, cond: int) -> np.ndarray:
    """∂ css_residuals / ∂ (φ₁…φp, θ₁…θq), one column each.

    The residuals are r = P·e with e = θ(B)⁻¹(φ(B)x) and P the projection off u = θ(B)⁻¹·1 (the
    mean's column; its (1 − Σφ) scale cancels in P). So ∂r/∂φᵢ = −P·θ(B)⁻¹Bⁱx, and from
    θ(B)·e = φ(B)x, ∂e/∂θⱼ = −θ(B)⁻¹Bʲe (likewise u), with P's own change for θ.
    """
    p, q = len(phi), len(theta)
    n = len(x) - cond
    e = _ma_inverse(theta, _ar_part(x, phi, cond))
    u = _ma_inverse(theta, np.ones(n))
    uu = u @ u
    s = (e @ u) / uu
    jac = np.empty((n, p + q))
    for i in range(1, p + 1):
        de = -_ma_inverse(theta, x[cond - i : len(x) - i].copy())
        jac[:, i - 1] = de - u * ((u @ de) / uu)
    for j in range(1, q + 1):
        lagged_e = np.zeros(n)
        lagged_u = np.zeros(n)
        lagged_e[j:] = e[: n - j]
        lagged_u[j:] = u[: n - j]
        de = -_ma_inverse(theta, lagged_e)
        du = -_ma_inverse(theta, lagged_u)
        ds = (de @ u + e @ du) / uu - 2.0 * s * (u @ du) / uu
        jac[:, p + j - 1] = de - ds * u - s * du
    return jac


@nb.njit(cache=True)
def _monahan_jacobian(free: np.ndarray) -> np.ndarray:
    """∂ constrain_stationary(free) / ∂ free, forward mode through its recursion (y[k, i] =
    y[k−1, i] + r_k·y[k−1, k−i−1], y[k, k] = r_k, r = f/√(1 + f²); result −y[n−1]); zero where
    a free value is clipped at FREE_BOUND."""
    n = len(free)
    r = np.empty(n)
    dr = np.empty(n)
    for k in range(n):
        v = free[k]
        r[k] = v / math.sqrt(1.0 + v * v)
        dr[k] = 0.0 if abs(v) > FREE_BOUND else (1.0 + v * v) ** -1.5
    y = np.zeros(n)
    dy = np.zeros((n, n))  # dy[i, m] = ∂y[i]/∂r_m
    for k in range(n):
        row = np.zeros(n)
        drow = np.zeros((n, n))
        for i in range(k):
            row[i] = y[i] + r[k] * y[k - i - 1]
            for m in range(n):
                drow[i, m] = dy[i, m] + r[k] * dy[k - i - 1, m]
            drow[i, k] += y[k - i - 1]
        row[k] = r[k]
        drow[k, k] = 1.0
        y, dy = row, drow
    out = np.empty((n, n))
    for i in range(n):
        for m in range(n):
            out[i, m] = -dy[i, m] * dr[m]
    return out


@nb.njit(cache=True)
def coefficients_jacobian(free: np.ndarray, p: int) -> np.ndarray:
    """∂ (φ, θ) / ∂ free: block diagonal, AR block then MA block (MA's sign flipped, as the
    coefficients' θ = −map(free[p:]))."""
    k = len(free)
    chain = np.zeros((k, k))
    if p > 0:
        chain[:p, :p] = _monahan_jacobian(free[:p])
    if k > p:
        chain[p:, p:] = -_monahan_jacobian(free[p:])
    return chain


@nb.njit(cache=True)
def css_jacobian_at(x: np.ndarray, free: np.ndarray, p: int, cond: int) -> np.ndarray:
    """∂ css_residuals_at / ∂ free: css_jacobian chained with the map's Jacobian."""
    phi, theta = coefficients(free, p)
    return css_jacobian(x, phi, theta, cond) @ coefficients_jacobian(free, p)


def compile_all() -> None:
    """Compile every kernel into numba's cache now (`make setup` runs this), by fitting a seeded
    AR(1) window of each size class once: the services' first fit then loads them in a fraction
    of a second instead of compiling for ~20 s."""
    from ml.forecast import forecast_origin

    rng = np.random.default_rng(0)
    steps = np.zeros(300)
    for t in range(1, len(steps)):
        steps[t] = 0.4 * steps[t - 1] + rng.normal(0.0, 0.01)
    for size in (140, 300):  # ≤ 150 values: exact fits throughout; above: CSS search, exact refit
        forecast_origin(np.log(100.0) + np.cumsum(steps[:size]), None, 0)


if __name__ == "__main__":
    compile_all()
    print("[setup] ARIMA kernels compiled (numba cache)")
