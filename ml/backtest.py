"""Backtest of the ARIMA against naive and drift: `python -m ml.backtest [--smoke]`.

Fixed protocol: every recorded daily Yahoo series of at least 250 bars; origins as the service
makes them (every N sessions of the XNYS calendar once M bars exist; N = H = 5, so the forecast
windows do not overlap) that have H bars after them; window W = 500 or all available; the
order cache carried from origin to origin as the service will. Steps 1 and 5 are scored apart:
MASE and sMAPE of each model's median, coverage of the 80% and 95% intervals with a Wilson 95%
interval. Prints a table, then name=value lines.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from ml.forecast import forecast_origin, log_closes
from ml.metrics import naive_scale, scaled_error, smape, wilson
from ml.outcome import Forecast, Outcome, Status
from ml.params import ForecastParams
from ml.schedule import origins, session_anchors
from ml.yahoo_recordings import DailySeries, recorded_daily_series

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings" / "yahoo"
MIN_SERIES_BARS = 250
STEPS = (1, 5)
MODELS = ("arima", "naive", "drift")
SMOKE_ORIGINS = 8  # per series

Forecaster = Callable[[np.ndarray, tuple[int, int, int] | None, int, ForecastParams], Outcome]


@dataclass
class Scores:
    """One model at one step, over the origins where the ARIMA fitted."""

    scaled_errors: list[float] = field(default_factory=list)
    smapes: list[float] = field(default_factory=list)
    inside80: int = 0
    inside95: int = 0

    def add(self, actual: float, model: Forecast, step: int, scale: float) -> None:
        k = step - 1
        self.scaled_errors.append(scaled_error(actual, model.median[k], scale))
        self.smapes.append(smape(actual, model.median[k]))
        self.inside80 += model.lo80[k] <= actual <= model.hi80[k]
        self.inside95 += model.lo95[k] <= actual <= model.hi95[k]


@dataclass
class Backtest:
    scores: dict[tuple[str, int], Scores] = field(default_factory=dict)
    fit_ms: list[float] = field(default_factory=list)  # origins that refitted a cached order
    select_ms: list[float] = field(default_factory=list)  # origins that searched an order
    statuses: Counter[str] = field(default_factory=Counter)
    orders: Counter[tuple[int, int, int]] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    series: int = 0

    def score(self, model: str, step: int) -> Scores:
        return self.scores.setdefault((model, step), Scores())


def run(
    load_series: Callable[[], Iterable[DailySeries]],
    params: ForecastParams,
    forecaster: Forecaster = forecast_origin,
    max_origins: int | None = None,
) -> Backtest:
    """Every origin of every series `load_series` yields, oldest first per series."""
    result = Backtest()
    for series in load_series():
        result.series += 1
        _run_series(series, params, forecaster, max_origins, result)
    return result


def _run_series(
    series: DailySeries,
    params: ForecastParams,
    forecaster: Forecaster,
    max_origins: int | None,
    result: Backtest,
) -> None:
    y = log_closes(series.closes)
    scheduled = [
        i for i in origins(session_anchors(series.days), params) if i + params.horizon < len(y)
    ]
    order, left = None, 0
    for i in scheduled[:max_origins]:
        started = time.perf_counter()
        outcome = forecaster(y[: i + 1], order, left, params)
        elapsed_ms = 1000 * (time.perf_counter() - started)
        result.statuses[outcome.status] += 1
        if outcome.status is not Status.FITTED:
            result.failures[outcome.message] += 1
            order, left = None, 0
            continue
        (result.select_ms if outcome.searched else result.fit_ms).append(elapsed_ms)
        order, left = outcome.order, outcome.refits_left
        result.orders[outcome.order] += 1
        scale = naive_scale(series.closes[max(0, i + 1 - params.window) : i + 1])
        for model in MODELS:
            forecast = outcome.forecast(model)
            for step in STEPS:
                result.score(model, step).add(series.closes[i + step], forecast, step, scale)


def report(result: Backtest) -> dict[str, float]:
    """The name=value figures (and prints the table)."""
    figures: dict[str, float] = {}
    print(f"{'step':<5}{'model':<7}{'MASE':>8}{'sMAPE%':>8}{'cov80':>7}{'cov95':>7}  cov95 CI")
    for step in STEPS:
        for model in MODELS:
            s = result.score(model, step)
            n = len(s.scaled_errors)
            mase = float(np.mean(s.scaled_errors)) if n else float("nan")
            low, high = wilson(s.inside95, n)
            cov80, cov95 = (s.inside80 / n, s.inside95 / n) if n else (float("nan"),) * 2
            print(
                f"h{step:<4}{model:<7}{mase:>8.4f}{np.mean(s.smapes) if n else 0:>8.3f}"
                f"{cov80:>7.3f}{cov95:>7.3f}  [{low:.3f}, {high:.3f}]"
            )
            figures[f"mase_{model}_h{step}"] = mase
            figures[f"smape_{model}_h{step}"] = float(np.mean(s.smapes)) if n else float("nan")
            if model == "arima":
                figures[f"coverage80_h{step}"] = cov80
                figures[f"coverage95_h{step}"] = cov95
                figures[f"coverage95_h{step}_ci_low"] = low
                figures[f"coverage95_h{step}_ci_high"] = high
    figures["fit_ms_p50"] = _percentile(result.fit_ms, 50)
    figures["fit_ms_p99"] = _percentile(result.fit_ms, 99)
    figures["select_ms_p50"] = _percentile(result.select_ms, 50)
    figures["select_ms_p99"] = _percentile(result.select_ms, 99)
    return figures


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def emit(name: str, value: object) -> None:
    """One `name=value` line, formatted as bench.harness.emit (ml does not import bench)."""
    if isinstance(value, float):
        value = f"{value:.6g}"
    print(f"{name}={value}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_ORIGINS} origins a series")
    parser.add_argument(
        "--source",
        choices=("recordings", "postgres"),
        default="recordings",
        help="the bundled recorded series, or the daily bars stored in PostgreSQL (settings)",
    )
    parser.add_argument("--save", action="store_true", help="write forecast_evaluations rows")
    args = parser.parse_args(argv)
    params = ForecastParams()
    max_origins = SMOKE_ORIGINS if args.smoke else None
    conninfo = ""
    if args.source == "postgres" or args.save:
        from shared.settings import PostgresSettings, build

        conninfo = build(PostgresSettings).conninfo()
    if args.source == "postgres":
        from ml.evaluations import stored_daily_series

        def load() -> Iterable[DailySeries]:
            return stored_daily_series(conninfo, MIN_SERIES_BARS)
    else:

        def load() -> Iterable[DailySeries]:
            return recorded_daily_series(RECORDINGS, MIN_SERIES_BARS)

    with threadpool_limits(limits=1):  # one BLAS thread: the figures of a single-core fit
        result = run(load, params, max_origins=max_origins)
    emit("backtest", "forecast")
    emit("python", platform.python_version())
    emit("params", ",".join(f"{k}={v}" for k, v in params.to_json().items()))
    emit("smoke", args.smoke)
    emit("series", result.series)
    emit("origins", sum(result.statuses.values()))
    for status in Status:
        emit(f"origins_{status}", result.statuses[status])
    emit("orders", " ".join(f"{p},{d},{q}:{n}" for (p, d, q), n in result.orders.most_common()))
    for message, count in result.failures.most_common(3):
        emit("failure", f"{count}x {message}")
    for name, value in report(result).items():
        emit(name, value)
    if args.save:
        from ml.evaluations import save

        run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        emit("run_id", run_id)
        emit("evaluation_rows", save(conninfo, run_id, result, params))


if __name__ == "__main__":
    main()
