"""The backtest: its protocol on a series from a callable, and the --smoke run's output."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import date, timedelta

import numpy as np

from ml.backtest import run
from ml.outcome import Status
from ml.params import ForecastParams
from ml.yahoo_recordings import DailySeries
from tests.conftest import REPO_ROOT
from tests.unit.ml.synthetic import random_walk

STEPS = ("h1", "h5")
PER_STEP = (
    "mase_arima_{}",
    "mase_naive_{}",
    "mase_drift_{}",
    "coverage80_{}",
    "coverage95_{}",
    "coverage95_{}_ci_low",
    "coverage95_{}_ci_high",
)
NAMES = [name.format(step) for step in STEPS for name in PER_STEP] + [
    "fit_ms_p50",
    "fit_ms_p99",
    "select_ms_p50",
]


def _weekdays(count: int) -> tuple[date, ...]:
    days, day = [], date(2015, 1, 5)
    holidays = {date(2015, 1, 19), date(2015, 2, 16), date(2015, 4, 3), date(2015, 5, 25)}
    while len(days) < count:
        if day.weekday() < 5 and day not in holidays:
            days.append(day)
        day += timedelta(days=1)
    return tuple(days)


def test_every_origin_of_a_series_from_a_callable_is_scored() -> None:
    series = DailySeries("walk", _weekdays(100), np.exp(random_walk(100, seed=8)))
    params = ForecastParams(min_bars=40, window=60)
    result = run(lambda: [series], params)
    # Origins: session anchors ≡ 0 mod 5 from the 40th bar on with 5 bars after them, which
    # here are positions 41, 46, …, 91.
    assert sum(result.statuses.values()) == result.statuses[Status.FITTED] == 11
    assert len(result.select_ms) == 2 and len(result.fit_ms) == 9  # a search, then 5 refits
    for model in ("arima", "naive", "drift"):
        assert len(result.score(model, 5).scaled_errors) == 11


def test_the_smoke_run_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ml.backtest", "--smoke"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert figures["smoke"] == "True"
    assert int(figures["origins_fitted"]) > 0
    for name in NAMES:
        assert math.isfinite(float(figures[name])), name
    assert 0 <= float(figures["coverage95_h5_ci_low"]) <= float(figures["coverage95_h5"])
