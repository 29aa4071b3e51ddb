"""The direction model's PostgreSQL side: split-adjusted bars with their indicators in, one
`predictions` row per (model version, symbol, interval, bar) out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg.types.json import Jsonb

from ml.features import INDICATOR_COLUMNS, LOOKBACK_BARS

# One series on its newest split basis, with the periods its indicators were computed with.
# Bars from LOOKBACK_BARS before `since` on, so the first bars in range have their lagged
# returns (the subquery walks back along price_bars' primary key; NULL since: from the start).
SELECT_SERIES = """
SELECT b.ts, b.close, b.sma_fast, b.sma_slow, b.rsi, b.macd, b.macd_hist, b.bb_lower,
       b.bb_middle, b.bb_upper, b.volatility, p.params::text
FROM bars_with_indicators_adjusted b
LEFT JOIN indicator_params p USING (params_id)
WHERE b.symbol = %(symbol)s AND b.interval = %(interval)s
  AND b.ts >= coalesce((SELECT ts FROM price_bars
                        WHERE symbol = %(symbol)s AND interval = %(interval)s
                          AND ts < %(since)s::timestamptz
                        ORDER BY ts DESC OFFSET %(skip)s LIMIT 1), '-infinity')
  AND b.ts <= coalesce(%(until)s::timestamptz, 'infinity')
ORDER BY b.ts
"""
INSERT_MODEL = """
INSERT INTO prediction_models (model_version, interval, metadata) VALUES (%s, %s, %s)
ON CONFLICT (model_version) DO NOTHING
"""
# Idempotent: a prediction already stored for the key stays as it was (the first one wins).
INSERT_PREDICTIONS = """
INSERT INTO predictions (model_version, symbol, interval, ts, probability_up, predicted_up)
SELECT %s, r.symbol, %s, r.ts, r.probability_up, r.predicted_up
FROM unnest(%s::text[], %s::timestamptz[], %s::float8[], %s::boolean[])
     AS r(symbol, ts, probability_up, predicted_up)
ON CONFLICT (model_version, symbol, interval, ts) DO NOTHING
"""
# SELECT_SERIES' columns (the indicator ones in INDICATOR_COLUMNS' order).
COLUMNS = ["ts", "close", *INDICATOR_COLUMNS, "params"]


def load_series(
    conn: psycopg.Connection,
    symbol: str,
    interval: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """One series' bars, oldest first: ts, close, the indicator columns (NaN where NULL) and
    `params` (the indicator periods as a dict, None for a bar without indicators). Starts
    LOOKBACK_BARS before `since` (the caller keeps the bars in range)."""
    rows = conn.execute(
        SELECT_SERIES,
        {
            "symbol": symbol,
            "interval": interval,
            "since": since,
            "until": until,
            "skip": LOOKBACK_BARS - 1,
        },
    ).fetchall()
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame = frame.astype({name: float for name in ["close", *INDICATOR_COLUMNS]})
    frame["params"] = [None if text is None else json.loads(text) for text in frame["params"]]
    return frame


def save_predictions(
    conn: psycopg.Connection,
    metadata: dict[str, Any],
    symbols: Sequence[str],
    times: Sequence[datetime],
    probabilities: np.ndarray,
    predicted_up: np.ndarray,
) -> int:
    """Register the model (once) and insert its predictions in one transaction; returns the
    rows that were new."""
    version, interval = metadata["version"], metadata["interval"]
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(INSERT_MODEL, (version, interval, Jsonb(metadata)))
        cur.execute(
            INSERT_PREDICTIONS,
            (
                version,
                interval,
                list(symbols),
                list(times),
                [float(p) for p in probabilities],
                [bool(u) for u in predicted_up],
            ),
        )
        return cur.rowcount
