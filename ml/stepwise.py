"""The Hyndman–Khandakar stepwise search of (p, q) at a given d, by AICc (auto.arima's, without
seasonal terms; the constant or drift always included)."""

from __future__ import annotations

import math

import numpy as np

from ml.arima import (
    MIN_ROOT_MODULUS,
    ArimaError,
    ArimaFit,
    aicc,
    differenced,
    fit_order,
    min_root_modulus,
    parameter_count,
)
from ml.arma import Deadline, coefficients, css_residuals, fit_css

# auto.arima approximates the search by CSS above 150 observations, then refits by exact ML.
APPROXIMATION_ABOVE = 150
# The neighbours tried around the current best, in auto.arima's order: p, q, then both.
NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


class _Scores:
    """AICc of each (p, q) tried: by CSS when approximating, else by the exact fit."""

    def __init__(self, y: np.ndarray, d: int, max_p: int, maxiter: int, deadline: Deadline):
        self.y, self.d = y, d
        self.x = differenced(y, d)
        self.approximate = len(y) > APPROXIMATION_ABOVE
        # One conditioning for every candidate: the CSS sums then cover the same observations.
        self.cond = max_p
        self.maxiter, self.deadline = maxiter, deadline
        self.scores: dict[tuple[int, int], float] = {}
        self.exact: dict[tuple[int, int], ArimaFit] = {}

    def __call__(self, p: int, q: int) -> float:
        if (p, q) not in self.scores:
            self.scores[(p, q)] = self._score(p, q)
        return self.scores[(p, q)]

    def _score(self, p: int, q: int) -> float:
        if not self.approximate:
            try:
                fit = fit_order(self.y, (p, self.d, q), self.maxiter, self.deadline)
            except ArimaError:
                return math.inf
            self.exact[(p, q)] = fit
            return math.inf if fit.near_unit_root else fit.aicc
        optimum = fit_css(self.x, p, q, self.cond, self.maxiter, self.deadline)
        ar, ma = coefficients(optimum.free, p)
        if min_root_modulus(ar, ma) < MIN_ROOT_MODULUS:
            return math.inf
        resid = css_residuals(self.x, ar, ma, self.cond)
        sigma2 = float(resid @ resid) / len(resid)
        if not sigma2 > 0:
            return math.inf
        n = len(resid)
        loglike = -0.5 * n * (math.log(2 * math.pi * sigma2) + 1)
        return aicc(loglike, parameter_count(p, q), n)


def search_order(
    y: np.ndarray, d: int, max_p: int, max_q: int, maxiter: int, deadline: Deadline
) -> ArimaFit:
    """Stepwise search from (2,2), (0,0), (1,0), (0,1); move to the first neighbour that lowers
    the AICc, until none does. The best fit by exact ML whose roots stay off the unit circle
    wins (approximated searches refit the candidates in order of their CSS AICc, as R)."""
    score = _Scores(y, d, max_p, maxiter, deadline)
    starts = [(2, 2), (0, 0), (1, 0), (0, 1)]
    for p, q in starts:
        if p <= max_p and q <= max_q:
            score(p, q)
    best = min(score.scores, key=lambda pq: (score.scores[pq], pq))
    moved = True
    while moved:
        moved = False
        for dp, dq in NEIGHBOURS:
            p, q = best[0] + dp, best[1] + dq
            if 0 <= p <= max_p and 0 <= q <= max_q and (p, q) not in score.scores:
                if score(p, q) < score.scores[best]:
                    best, moved = (p, q), True
                    break
    ranked = sorted(
        (pq for pq, value in score.scores.items() if math.isfinite(value)),
        key=lambda pq: (score.scores[pq], pq),
    )
    for p, q in ranked:
        fit = score.exact.get((p, q))
        if fit is None:
            try:
                fit = fit_order(y, (p, d, q), maxiter, deadline)
            except ArimaError:
                continue
        if not fit.near_unit_root:
            return fit
    raise ArimaError(
        f"no ARIMA(p,{d},q) with p ≤ {max_p}, q ≤ {max_q} fits the window with its roots "
        f"off the unit circle ({len(score.scores)} orders tried)"
    )
