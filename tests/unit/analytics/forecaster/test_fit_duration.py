"""Each origin fit carries its own duration, measured where it ran, and the handler observes it
by kind and outcome: the histogram counts exactly the fits the counter counts."""

from __future__ import annotations

import time

import numpy as np
from prometheus_client import REGISTRY

from analytics.forecaster.pool import FitJob, FitPool, fit_one
from ml.forecast import forecast_origin
from ml.params import ForecastParams
from tests.unit.analytics.forecaster.test_process import PARAMS, bars, handler, records  # noqa: F401

WINDOW = tuple(np.log(100 + np.cumsum(np.sin(np.arange(130)) + 0.5)))


def test_a_fit_carries_its_own_duration_and_the_direct_outcome() -> None:
    params = ForecastParams()
    started = time.monotonic()
    result = fit_one(FitJob(WINDOW, None, 0), params)
    elapsed = time.monotonic() - started
    assert 0 < result.seconds <= elapsed
    assert result.outcome == forecast_origin(np.asarray(WINDOW), None, 0, params)


def test_a_worker_measures_the_fit_not_the_round_trip() -> None:
    pool = FitPool(ForecastParams(), workers=1)
    try:
        jobs = [FitJob(WINDOW, None, 0)] * 3
        started = time.monotonic()
        results = pool.fit(jobs)
        elapsed = time.monotonic() - started
    finally:
        pool.close()
    assert len(results) == 3
    # Fitted one after another by one worker: each measured its own fit, none the whole round.
    assert all(r.seconds > 0 for r in results)
    assert sum(r.seconds for r in results) <= elapsed


def fits(name: str, outcome: str, kind: str) -> float:
    return REGISTRY.get_sample_value(name, {"outcome": outcome, "kind": kind}) or 0.0


def test_every_counted_fit_is_observed_by_kind_and_outcome(bars) -> None:  # noqa: F811
    labels = [(o, k) for o in ("fitted", "failed", "timeout") for k in ("search", "refit")]
    before = {
        label: (
            fits("pipeline_forecast_fits_total", *label),
            fits("pipeline_forecast_fit_duration_seconds_count", *label),
        )
        for label in labels
    }
    effects = handler().process(records(bars), {})
    assert effects.rows.origins
    moved = 0.0
    for label in labels:
        counted = fits("pipeline_forecast_fits_total", *label) - before[label][0]
        observed = fits("pipeline_forecast_fit_duration_seconds_count", *label) - before[label][1]
        assert observed == counted, label
        moved += counted
    assert moved == len(effects.rows.origins)
