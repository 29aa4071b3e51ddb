"""The backtest's PostgreSQL side: stored daily series in (`--source postgres`), and one
`forecast_evaluations` row per model and step out (`--save`)."""

from __future__ import annotations

import json
from datetime import UTC

import numpy as np
import psycopg

from ml.backtest import MODELS, STEPS, Backtest
from ml.metrics import wilson
from ml.params import ForecastParams
from ml.yahoo_recordings import DailySeries

# Daily bars on their newest split basis (a split inside the window is not a crash in price).
SELECT_DAILY = """
SELECT symbol, ts, close FROM price_bars_adjusted WHERE interval = '1d' ORDER BY symbol, ts
"""
INSERT_EVALUATION = """
INSERT INTO forecast_evaluations (run_id, model, step, series, origins, mase, smape, coverage80,
                                  coverage95, coverage95_ci_low, coverage95_ci_high, settings)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


def stored_daily_series(conninfo: str, min_bars: int) -> list[DailySeries]:
    """Every stored daily series with at least `min_bars` bars, by symbol."""
    by_symbol: dict[str, list[tuple[object, float]]] = {}
    with psycopg.connect(conninfo) as conn:
        for symbol, ts, close in conn.execute(SELECT_DAILY):
            by_symbol.setdefault(symbol, []).append((ts.astimezone(UTC).date(), close))
    return [
        DailySeries(symbol, tuple(day for day, _ in rows), np.array([c for _, c in rows]))
        for symbol, rows in sorted(by_symbol.items())
        if len(rows) >= min_bars
    ]


def save(conninfo: str, run_id: str, result: Backtest, params: ForecastParams) -> int:
    """One row per model and step of `result`; returns the rows written."""
    rows = []
    for step in STEPS:
        for model in MODELS:
            scores = result.score(model, step)
            n = len(scores.scaled_errors)
            low, high = wilson(scores.inside95, n)
            rows.append(
                (
                    run_id,
                    model,
                    step,
                    result.series,
                    n,
                    float(np.mean(scores.scaled_errors)) if n else None,
                    float(np.mean(scores.smapes)) if n else None,
                    scores.inside80 / n if n else None,
                    scores.inside95 / n if n else None,
                    low,
                    high,
                    json.dumps(params.to_json()),
                )
            )
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.executemany(INSERT_EVALUATION, rows)
    return len(rows)
