"""The forecaster's SQL: origins and their outcomes, forecasts, scored steps, series states."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from analytics.forecaster.series import ForecastSeries
from analytics.packed_state import decode_values, encode_document, encode_values, state_document
from ml.outcome import Forecast, Outcome
from shared.errors import FencedError, StateRestoreError
from shared.metrics import ROWS_WRITTEN, UPSERT_CONFLICTS
from shared.pg_arrays import ByteaArray, Int4Array, Int8Array, TextArray, TimestamptzArray

# Rows are keyed naturally and inserted with DO NOTHING: a batch written again after a crash
# (the fits give the same numbers) changes nothing.
INSERT_ORIGINS = """
INSERT INTO forecast_origins (symbol, interval, origin_ts, outcome, message, arima_order,
                              searched, warnings, window_bars, scale)
SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::text[],
                     %s::text[], %s::boolean[], %s::text[], %s::int[], %s::float8[])
ON CONFLICT (symbol, interval, origin_ts) DO NOTHING
"""
CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_forecasts
(LIKE forecasts INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS staging_forecast_errors
(LIKE forecast_errors INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
FORECAST_COLUMNS = (
    "symbol, interval, origin_ts, step, target_ts, model, median, mean, lo80, hi80, lo95, hi95, "
    "arima_order, aicc"
)
FORECAST_TYPES = ["text", "text", "timestamptz", "int2", "timestamptz", "text", *["float8"] * 6]
FORECAST_TYPES += ["text", "float8"]
ERROR_COLUMNS = (
    "symbol, interval, origin_ts, step, model, bar_ts, actual, abs_error, scaled_error, "
    "inside80, inside95"
)
ERROR_TYPES = ["text", "text", "timestamptz", "int2", "text", "timestamptz", *["float8"] * 3]
ERROR_TYPES += ["bool", "bool"]
COPY_FORECASTS = f"COPY staging_forecasts ({FORECAST_COLUMNS}) FROM STDIN (FORMAT BINARY)"
COPY_ERRORS = f"COPY staging_forecast_errors ({ERROR_COLUMNS}) FROM STDIN (FORMAT BINARY)"
MOVE_FORECASTS = """
INSERT INTO forecasts (symbol, interval, origin_ts, step, target_ts, model, median, mean, lo80,
                       hi80, lo95, hi95, arima_order, aicc)
SELECT symbol, interval, origin_ts, step, target_ts, model, median, mean, lo80, hi80, lo95, hi95,
       arima_order, aicc
FROM staging_forecasts
ON CONFLICT (symbol, interval, origin_ts, step, model) DO NOTHING
"""
MOVE_ERRORS = """
INSERT INTO forecast_errors (symbol, interval, origin_ts, step, model, bar_ts, actual, abs_error,
                             scaled_error, inside80, inside95)
SELECT symbol, interval, origin_ts, step, model, bar_ts, actual, abs_error, scaled_error,
       inside80, inside95
FROM staging_forecast_errors
ON CONFLICT (symbol, interval, origin_ts, step, model) DO NOTHING
"""
SELECT_STATES = """
SELECT s.symbol, s.interval, s.kafka_partition, s.packed_state, s.state, s.last_ts,
       w.bars, w.packed_window
FROM analytics_state s
LEFT JOIN forecaster_windows w USING (consumer_group, symbol, interval)
WHERE s.consumer_group = %s AND s.kafka_partition = ANY(%s)
"""
# The analytics consumer's state table, under the forecaster's own consumer group; nothing
# recomputes a forecaster state, so its revision stays 0 and the row is simply replaced.
# Packed (MessagePack, analytics/packed_state.py) and sent as binary arrays (%b,
# shared/pg_arrays.py), like the analytics consumer's: as json text in a text array literal
# (every quote escaped) a state's encoding was 62% of the forecaster's CPU at 2,000 bars/s
# (py-spy). A row written as json before loads all the same and is replaced packed. The window's
# closes are stored apart (SAVE_WINDOWS): a state holds those fed since.
SAVE_STATES = """
INSERT INTO analytics_state (consumer_group, symbol, interval, kafka_partition, packed_state,
                             last_ts)
SELECT %s, w.symbol, w.interval, w.kafka_partition, w.packed_state, w.last_ts
FROM unnest(%b::text[], %b::text[], %b::int[], %b::bytea[], %b::timestamptz[])
     AS w(symbol, interval, kafka_partition, packed_state, last_ts)
ON CONFLICT (consumer_group, symbol, interval) DO UPDATE SET
    kafka_partition = EXCLUDED.kafka_partition, packed_state = EXCLUDED.packed_state,
    state = NULL, last_ts = EXCLUDED.last_ts, updated_at = now()
WHERE analytics_state.revision = 0
RETURNING symbol
"""

# A series' window of log closes, stored every REBASE_AFTER bars (series.py): the state row
# holds the closes fed since, so a batch writes ~0.6 kB a series instead of ~4.5 kB.
SAVE_WINDOWS = """
INSERT INTO forecaster_windows (consumer_group, symbol, interval, bars, packed_window)
SELECT %s, w.symbol, w.interval, w.bars, w.packed_window
FROM unnest(%b::text[], %b::text[], %b::int8[], %b::bytea[])
     AS w(symbol, interval, bars, packed_window)
ON CONFLICT (consumer_group, symbol, interval) DO UPDATE SET
    bars = EXCLUDED.bars, packed_window = EXCLUDED.packed_window, updated_at = now()
"""

SeriesKey = tuple[str, str]


def prepare_connection(conn: psycopg.Connection) -> None:
    """Pool `configure` hook: this connection's staging tables."""
    conn.execute(CREATE_STAGING)
    conn.commit()


def _order(order: tuple[int, int, int] | None) -> str | None:
    return None if order is None else f"({order[0]},{order[1]},{order[2]})"


def origin_row(
    key: SeriesKey, origin_ts: datetime, outcome: Outcome, window_bars: int, scale: float
) -> tuple[Any, ...]:
    return (
        key[0],
        key[1],
        origin_ts,
        outcome.status.value,
        outcome.message or None,
        _order(outcome.order) if outcome.status.value == "fitted" else None,
        outcome.searched,
        "\n".join(outcome.warnings) or None,
        window_bars,
        scale,
    )


def forecast_rows(
    key: SeriesKey, origin_ts: datetime, targets: Sequence[datetime | None], forecast: Forecast
) -> list[tuple[Any, ...]]:
    return [
        (
            key[0],
            key[1],
            origin_ts,
            step,
            targets[step - 1],
            forecast.model,
            forecast.median[step - 1],
            forecast.mean[step - 1],
            forecast.lo80[step - 1],
            forecast.hi80[step - 1],
            forecast.lo95[step - 1],
            forecast.hi95[step - 1],
            _order(forecast.order),
            forecast.aicc,
        )
        for step in range(1, len(forecast.median) + 1)
    ]


def write_rows(
    conn: psycopg.Connection,
    origins: Sequence[tuple[Any, ...]],
    forecasts: Sequence[tuple[Any, ...]],
    errors: Sequence[tuple[Any, ...]],
) -> None:
    with conn.cursor() as cur:
        if origins:
            cur.execute(INSERT_ORIGINS, [list(column) for column in zip(*origins, strict=True)])
            _count("forecast_origins", len(origins), cur.rowcount)
        for table, rows, copy_sql, types, move in (
            ("forecasts", forecasts, COPY_FORECASTS, FORECAST_TYPES, MOVE_FORECASTS),
            ("forecast_errors", errors, COPY_ERRORS, ERROR_TYPES, MOVE_ERRORS),
        ):
            if not rows:
                continue
            with cur.copy(copy_sql) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            cur.execute(move)
            _count(table, len(rows), cur.rowcount)


def _count(table: str, offered: int, inserted: int) -> None:
    # Counted before COMMIT, like the other writers: a row already there is a redelivery the
    # offsets should have prevented.
    ROWS_WRITTEN.labels(table).inc(inserted)
    UPSERT_CONFLICTS.labels(table).inc(offered - inserted)


def load_series(
    conn: psycopg.Connection, group: str, partitions: Sequence[int]
) -> dict[SeriesKey, tuple[int, ForecastSeries]]:
    loaded = {}
    for symbol, interval, partition, packed, legacy, last_ts, window_bars, window in conn.execute(
        SELECT_STATES, (group, list(partitions))
    ):
        try:
            stored_window = None if window is None else (window_bars, decode_values(window))
            document = state_document(packed, legacy)
            series = ForecastSeries.from_state(document, last_ts, stored_window)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateRestoreError(
                f"forecaster state of {symbol}/{interval} ({type(exc).__name__}: {exc})"
            ) from exc
        loaded[(symbol, interval)] = (partition, series)
    return loaded


def save_series(
    conn: psycopg.Connection, group: str, touched: dict[SeriesKey, tuple[int, ForecastSeries]]
) -> None:
    if not touched:
        return
    items = list(touched.items())
    documents, windows = [], []
    for key, (_partition, series) in items:
        document, window = series.stored()
        documents.append(encode_document(document))
        if window is not None:
            windows.append((key, series.bars, encode_values(window)))
    saved = conn.execute(
        SAVE_STATES,
        (
            group,
            TextArray([key[0] for key, _ in items]),
            TextArray([key[1] for key, _ in items]),
            Int4Array([partition for _, (partition, _s) in items]),
            ByteaArray(documents),
            TimestamptzArray([series.last_ts for _, (_p, series) in items]),
        ),
    ).fetchall()
    if len(saved) != len(items):
        raise FencedError("a forecaster state was replaced under this batch")
    if windows:
        conn.execute(
            SAVE_WINDOWS,
            (
                group,
                TextArray([key[0] for key, _, _ in windows]),
                TextArray([key[1] for key, _, _ in windows]),
                Int8Array([bars for _, bars, _ in windows]),
                ByteaArray([packed for _, _, packed in windows]),
            ),
        )
