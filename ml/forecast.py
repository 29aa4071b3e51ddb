"""One origin of one series: the ARIMA (searched or refitted) and the naive and drift baselines,
every failure an Outcome with its message rather than an exception."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from ml.arima import ArimaError, ArimaFit, fit_order, forecast
from ml.arma import Deadline, FitTimeout
from ml.baselines import drift, naive
from ml.kpss import choose_d
from ml.outcome import Forecast, Outcome, Status
from ml.params import ForecastParams
from ml.stepwise import search_order

MAX_WARNINGS = 5  # distinct warnings kept per origin; the rest are counted in the last line
DEFAULT_PARAMS = ForecastParams()
EXPLOSIVE_T = 3.5  # right-tailed Dickey–Fuller t above which a window is explosive


def forecast_origin(
    log_closes: Sequence[float] | np.ndarray,
    cached_order: tuple[int, int, int] | None,
    refits_left: int,
    params: ForecastParams = DEFAULT_PARAMS,
) -> Outcome:
    """Forecast the `params.horizon` bars after the last of `log_closes` (the series up to the
    origin, oldest first; the last `params.window` are used).

    With a `cached_order` and `refits_left` > 0 that order is refitted (and `refits_left` comes
    back one lower); otherwise d is chosen by KPSS and (p, q) by the stepwise search, and
    `refits_left` comes back as `params.refits`. A cached order that no longer fits cleanly is
    searched again. The same window and arguments give the same Outcome, bit for bit.
    """
    y = np.asarray(log_closes, dtype=float)[-params.window :]
    if not np.all(np.isfinite(y)):
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        return _failed(f"log close {y[bad]!r} at window position {bad} is not finite", ())
    baselines = tuple(f for f in (naive(y, params.horizon), drift(y, params.horizon)) if f)
    if len(y) < params.min_bars:
        return _failed(f"{len(y)} bars; an origin needs at least {params.min_bars}", baselines)
    if not np.ptp(y) > 0:
        return _failed("every close in the window is the same: nothing to model", baselines)
    deadline = Deadline.after(params.time_budget_s)
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
        warnings.simplefilter("always")
        try:
            fit, searched, notes = _fit(y, cached_order, refits_left, params, deadline)
            arima = forecast(fit, params.horizon)
            if not arima.is_finite():
                raise ArimaError(f"ARIMA{fit.order} forecast overflows the price scale")
        except FitTimeout as exc:
            status, message = Status.TIMEOUT, f"{exc} ({params.time_budget_s} s)"
        except (ArimaError, ValueError, ArithmeticError) as exc:
            status, message = Status.FAILED, str(exc) or type(exc).__name__
        else:
            left = params.refits if searched else refits_left - 1
            return Outcome(
                Status.FITTED,
                "",
                (arima, *baselines),
                fit.order,
                left,
                searched,
                _distinct(notes, caught),
            )
    return Outcome(status, message, baselines, None, 0, False, _distinct([], caught))


def _fit(
    y: np.ndarray,
    cached_order: tuple[int, int, int] | None,
    refits_left: int,
    params: ForecastParams,
    deadline: Deadline,
) -> tuple[ArimaFit, bool, list[str]]:
    """(fit, whether an order search ran, notes for the outcome's warnings)."""
    notes: list[str] = []
    _refuse_explosive(y)
    if cached_order is not None and refits_left > 0:
        try:
            fit = fit_order(y, cached_order, params.maxiter, deadline)
        except ArimaError as exc:
            notes.append(f"cached ARIMA{cached_order} failed ({exc}); order searched again")
        else:
            if not fit.near_unit_root:
                return fit, False, _convergence(fit, notes)
            notes.append(
                f"cached ARIMA{cached_order} now has a root near the unit circle; "
                "order searched again"
            )
    d = choose_d(y, params.kpss_alpha)
    fit = search_order(y, d, params.max_p, params.max_q, params.maxiter, deadline)
    return fit, True, _convergence(fit, notes)


def _refuse_explosive(y: np.ndarray) -> None:
    """Refuse an explosive window (a bubble: log closes growing faster than any drift) rather
    than fit the least bad stationary ARMA to it.

    Right-tailed Dickey–Fuller: Δy_t = α + δ·y_{t−1} + e_t, explosive when t(δ̂) > EXPLOSIVE_T.
    A random walk, with or without drift, stays below it: over 2,000 seeded walks of 120 and
    500 bars the largest t was 2.6, and no window of the recorded series exceeds 2.1.
    """
    lagged = y[:-1] - y[:-1].mean()
    change = np.diff(y) - np.diff(y).mean()
    spread = float(lagged @ lagged)
    if not spread > 0 or len(y) < 4:
        return
    delta = float(lagged @ change) / spread
    resid = change - delta * lagged
    se = math.sqrt(float(resid @ resid) / (len(change) - 2) / spread)
    if se > 0 and delta / se > EXPLOSIVE_T:
        raise ArimaError(
            f"explosive window: log closes grow like an AR(1) with φ = {1 + delta:.4f} "
            f"(Dickey–Fuller t = {delta / se:.1f} > {EXPLOSIVE_T})"
        )


def _convergence(fit: ArimaFit, notes: list[str]) -> list[str]:
    if not fit.converged:
        notes.append(f"ARIMA{fit.order}: the optimizer stopped at its evaluation limit")
    return notes


def _distinct(notes: list[str], caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    lines = list(dict.fromkeys([*notes, *(f"{w.category.__name__}: {w.message}" for w in caught)]))
    if len(lines) > MAX_WARNINGS:
        lines = [*lines[: MAX_WARNINGS - 1], f"... and {len(lines) - MAX_WARNINGS + 1} more"]
    return tuple(lines)


def _failed(message: str, baselines: tuple[Forecast, ...]) -> Outcome:
    return Outcome(Status.FAILED, message, baselines, None, 0, False)


def log_closes(closes: Sequence[float] | np.ndarray) -> np.ndarray:
    """Natural logs of closes; a close ≤ 0 or not finite becomes nan (an origin then fails)."""
    values = np.asarray(closes, dtype=float)
    with np.errstate(all="ignore"):
        return np.where(np.isfinite(values) & (values > 0), np.log(values), math.nan)
