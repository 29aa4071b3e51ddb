"""ARIMA forecaster timings on the recorded TSLA daily series: a refit of a known order and an
order search, each with its 5-step forecast, on the last 500 log closes, one thread.

`python -m bench.forecast` (full) or `--smoke` (the size `make test` runs). Prints name=value:
`fit_ms_p50` (ARIMA(1,1,1) with drift refitted through forecast_origin with that order cached)
and `select_ms_p50` (KPSS, the stepwise search and the chosen order's fit), plus statsmodels'
own ARIMA(1,1,1) with drift on the same window as a reference.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
from statsmodels.tsa.arima.model import ARIMA
from threadpoolctl import threadpool_limits

from bench.harness import emit
from ml.forecast import forecast_origin, log_closes
from ml.outcome import Status
from ml.params import ForecastParams
from ml.yahoo_recordings import read_chart

SERIES = (
    Path(__file__).resolve().parents[1]
    / "recordings"
    / "yahoo"
    / "chart_TSLA_1d_2010-06-29_2023-08-11.json"
)
POINTS = 500
KNOWN_ORDER = (1, 1, 1)


def _median_ms(runs: int, call: Callable[[], object]) -> float:
    call()  # warm imports and caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def refit(y: np.ndarray, params: ForecastParams) -> None:
    outcome = forecast_origin(y, KNOWN_ORDER, params.refits, params)
    if outcome.status is not Status.FITTED or outcome.searched:
        raise RuntimeError(f"the refit of ARIMA{KNOWN_ORDER} did not refit: {outcome}")


def select(y: np.ndarray, params: ForecastParams) -> None:
    outcome = forecast_origin(y, None, 0, params)
    if outcome.status is not Status.FITTED:
        raise RuntimeError(f"the order search failed: {outcome.message}")


def statsmodels_arima(y: np.ndarray, params: ForecastParams) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = ARIMA(y, order=KNOWN_ORDER, trend="t").fit()
        fitted.get_forecast(params.horizon).summary_frame(alpha=0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="few repetitions, for make test")
    parser.add_argument(
        "--fits-only", action="store_true", help="only the fit timings (no Kafka, no Postgres)"
    )
    args = parser.parse_args()
    runs_fit, runs_select, runs_statsmodels = (5, 3, 2) if args.smoke else (101, 31, 11)
    params = ForecastParams()
    y = log_closes(read_chart(SERIES).closes)[-POINTS:]
    emit("bench", "forecast")
    emit("python", platform.python_version())
    for package in ("numpy", "scipy", "statsmodels"):
        emit(package, version(package))
    emit("blas_threads", 1)
    emit("series", SERIES.name)
    emit("n_points", len(y))
    emit("params", ",".join(f"{k}={v}" for k, v in params.to_json().items()))
    emit("known_order", "".join(map(str, KNOWN_ORDER)))
    emit("runs_fit", runs_fit)
    emit("runs_select", runs_select)
    with threadpool_limits(limits=1):
        chosen = forecast_origin(y, None, 0, params).order
        emit("selected_order", "".join(map(str, chosen or ())))
        emit("fit_ms_p50", _median_ms(runs_fit, lambda: refit(y, params)))
        emit("select_ms_p50", _median_ms(runs_select, lambda: select(y, params)))
        emit(
            "statsmodels_arima_ms_p50",
            _median_ms(runs_statsmodels, lambda: statsmodels_arima(y, params)),
        )
    if not args.fits_only:
        service_figures(args.smoke)


def service_figures(smoke: bool) -> None:
    """backfill_s and live_cpu_share of the forecaster service (bench/forecast_service.py)."""
    from bench.forecast_service import measure_backfill, measure_live
    from bench.harness import emit_settings, fresh_target

    symbols, sessions = (10, 130) if smoke else (500, 252)
    live_symbols, warm, minutes = (10, 125, 10) if smoke else (500, 125, 30)
    workers = os.cpu_count() or 1
    with fresh_target("forecast") as target:
        emit_settings(target, workers=workers)
        measure_backfill(target, symbols, sessions, workers)
        measure_live(target, live_symbols, warm, minutes, workers, done=symbols * sessions)


if __name__ == "__main__":
    main()
