"""The analytics SQL: indicator params, indicator rows, late bars and the series' exact state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg.types.json import Jsonb

from analytics.alerts.state import AlertState
from analytics.indicators import IndicatorParams, IndicatorValues
from analytics.packed_state import encode_document, encode_state, state_document
from analytics.series import SeriesState
from shared.errors import FencedError, StateRestoreError
from shared.pg_arrays import ByteaArray, Int4Array, Int8Array, TextArray, TimestamptzArray

# DO NOTHING, then a plain SELECT when the row exists: an ON CONFLICT DO UPDATE would lock the
# row against every open batch (their indicators rows hold FOR KEY SHARE on it through the
# foreign key), so a new member could not start while another one's batch is open.
INSERT_PARAMS = """
INSERT INTO indicator_params (params) VALUES (%s) ON CONFLICT (params) DO NOTHING
RETURNING params_id
"""
SELECT_PARAMS = "SELECT params_id FROM indicator_params WHERE params = %s"

# A per-connection staging table (created when the pool opens the connection, emptied by
# every COMMIT): COPY lands here, then one INSERT moves the batch.
CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_indicators
(LIKE indicators INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
COPY_STAGING = """
COPY staging_indicators (symbol, interval, ts, sma_fast, sma_slow, ema_fast, ema_slow, rsi,
                         macd, macd_signal, macd_hist, bb_lower, bb_middle, bb_upper,
                         volatility, params_id, split_basis) FROM STDIN (FORMAT BINARY)
"""
STAGING_TYPES = ["text", "text", "timestamptz", *["float8"] * 12, "int4", "float8"]
# The fast path: the same COPY straight into indicators (half PostgreSQL's time of staging then
# INSERT … SELECT for a batch of 5,000, measured), inside a savepoint: a row already there
# undoes only this COPY, and the batch goes the staging way.
COPY_DIRECT = COPY_STAGING.replace("COPY staging_indicators", "COPY indicators")
MOVE_STAGED = """
INSERT INTO indicators (symbol, interval, ts, sma_fast, sma_slow, ema_fast, ema_slow, rsi, macd,
                        macd_signal, macd_hist, bb_lower, bb_middle, bb_upper, volatility,
                        params_id, split_basis)
SELECT symbol, interval, ts, sma_fast, sma_slow, ema_fast, ema_slow, rsi, macd, macd_signal,
       macd_hist, bb_lower, bb_middle, bb_upper, volatility, params_id, split_basis
FROM staging_indicators
"""
# The live consumer only inserts: a row already there is a redelivery the offsets should have
# prevented (counted as an upsert conflict, never overwritten).
INSERT_NEW = MOVE_STAGED + "ON CONFLICT (symbol, interval, ts) DO NOTHING"
# A recompute replaces what was there.
UPSERT = (
    MOVE_STAGED
    + """ON CONFLICT (symbol, interval, ts) DO UPDATE SET
    sma_fast = EXCLUDED.sma_fast, sma_slow = EXCLUDED.sma_slow, ema_fast = EXCLUDED.ema_fast,
    ema_slow = EXCLUDED.ema_slow, rsi = EXCLUDED.rsi, macd = EXCLUDED.macd,
    macd_signal = EXCLUDED.macd_signal, macd_hist = EXCLUDED.macd_hist,
    bb_lower = EXCLUDED.bb_lower, bb_middle = EXCLUDED.bb_middle, bb_upper = EXCLUDED.bb_upper,
    volatility = EXCLUDED.volatility, params_id = EXCLUDED.params_id,
    split_basis = EXCLUDED.split_basis, computed_at = now()
"""
)
# One key probe per bar asked about, pruned to its month at run time (as storage's
# COMPARE_WITH_STORED): a plain join could hash every partition of indicators.
SELECT_EXISTING = """
SELECT w.symbol, w.interval, w.ts
FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) AS w(symbol, interval, ts)
CROSS JOIN LATERAL (
    SELECT 1 FROM indicators i
    WHERE i.symbol = w.symbol AND i.interval = w.interval AND i.ts = w.ts
    LIMIT 1
) found
"""
INSERT_LATE = """
INSERT INTO late_bars (consumer_group, symbol, interval, ts, newest_ts, event_id)
SELECT %s, w.symbol, w.interval, w.ts, w.newest_ts, w.event_id
FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[])
     AS w(symbol, interval, ts, newest_ts, event_id)
ON CONFLICT (consumer_group, event_id) DO NOTHING
"""
SELECT_STATES = """
SELECT symbol, interval, kafka_partition, packed_state, state, last_ts, revision
FROM analytics_state
WHERE consumer_group = %s AND kafka_partition = ANY(%s)
"""
# The columns go as binary arrays (%b, shared/pg_arrays.py): a text-format bytea[] literal would
# escape every byte of the states (for json text, every quote), which cost more CPU than the rest
# of the batch. A row written before migration 0013 holds `state` (json): it is replaced by the
# packed form.
# Compare-and-set on `revision`: a state is only overwritten from the revision it was loaded at
# (0 for a series new to this consumer). A recompute bumps the revision, so a consumer still
# holding the old state in memory writes nothing and its whole batch is rolled back.
SAVE_STATES = """
INSERT INTO analytics_state (consumer_group, symbol, interval, kafka_partition, packed_state,
                             last_ts, revision)
SELECT %s, w.symbol, w.interval, w.kafka_partition, w.packed_state, w.last_ts, w.revision
FROM unnest(%b::text[], %b::text[], %b::int[], %b::bytea[], %b::timestamptz[], %b::bigint[])
     AS w(symbol, interval, kafka_partition, packed_state, last_ts, revision)
ON CONFLICT (consumer_group, symbol, interval) DO UPDATE SET
    kafka_partition = EXCLUDED.kafka_partition, packed_state = EXCLUDED.packed_state,
    state = NULL, last_ts = EXCLUDED.last_ts, updated_at = now()
WHERE analytics_state.revision = EXCLUDED.revision
RETURNING symbol, interval
"""
SELECT_SERIES = """
SELECT symbol, interval FROM analytics_state WHERE consumer_group = %s ORDER BY symbol, interval
"""
SELECT_LAST_TS = """
SELECT last_ts FROM analytics_state WHERE consumer_group = %s AND symbol = %s AND interval = %s
"""
LOCK_STATE = SELECT_LAST_TS + "FOR UPDATE"
HAS_BAR = "SELECT EXISTS (SELECT 1 FROM price_bars WHERE symbol = %s AND interval = %s AND ts = %s)"
SELECT_ADJUSTED_CLOSES = """
SELECT ts, close, split_basis, volume FROM price_bars_adjusted
WHERE symbol = %s AND interval = %s AND ts <= %s
ORDER BY ts
"""
SELECT_DOCUMENT = """
SELECT packed_state, state FROM analytics_state
WHERE consumer_group = %s AND symbol = %s AND interval = %s
"""
# A recompute writes the whole state (its alert machines rebuilt, or kept as stored).
REPLACE_STATE = """
UPDATE analytics_state
SET packed_state = %s, state = NULL, revision = revision + 1, updated_at = now()
WHERE consumer_group = %s AND symbol = %s AND interval = %s
RETURNING revision
"""

IndicatorRow = tuple[Any, ...]


@dataclass
class StoredSeries:
    """A series' state as the consumer holds it: where it lives, the revision it read and the
    id of the periods it is computed with."""

    state: SeriesState
    kafka_partition: int
    revision: int = 0
    params_id: int = 0
    alerts: AlertState = field(default_factory=AlertState)  # the series' alert machines

    def copy(self) -> StoredSeries:
        return StoredSeries(
            self.state.copy(),
            self.kafka_partition,
            self.revision,
            self.params_id,
            self.alerts.copy(),
        )


def prepare_connection(conn: psycopg.Connection) -> None:
    """Pool `configure` hook: give each new connection its staging table."""
    conn.execute(CREATE_STAGING)
    conn.commit()


def params_id(conn: psycopg.Connection, params: IndicatorParams) -> int:
    """The id of this set of periods, registered on first use."""
    document = Jsonb(params.to_json())
    row = conn.execute(INSERT_PARAMS, (document,)).fetchone()
    if row is None:
        (row,) = conn.execute(SELECT_PARAMS, (document,)).fetchall()
    return int(row[0])


def indicator_row(
    symbol: str,
    interval: str,
    ts: datetime,
    values: IndicatorValues,
    params: int,
    split_basis: float | None,
) -> IndicatorRow:
    """One indicators row; IndicatorValues is a tuple in the table's column order.
    `split_basis`: the basis the values are expressed in (the series state's, after the feed)."""
    return (symbol, interval, ts, *values, params, split_basis)


def write_indicators(
    conn: psycopg.Connection,
    rows: Sequence[IndicatorRow],
    *,
    replace: bool = False,
    direct: bool = False,
) -> int:
    """COPY rows into staging, then insert (or, for a recompute, replace); rows written. With
    `direct` (inserts only): COPY them straight into indicators, no savepoint: a row already
    there raises UniqueViolation and fails the transaction (the loop writes the batch again the
    staging way, which skips that row: shared/loop/direct_copy.py). In the caller's
    transaction."""
    if not rows:
        return 0
    if direct and not replace:
        with conn.cursor() as cur, cur.copy(COPY_DIRECT) as copy:
            copy.set_types(STAGING_TYPES)
            for row in rows:
                copy.write_row(row)
        return len(rows)
    with conn.cursor() as cur:
        with cur.copy(COPY_STAGING) as copy:
            copy.set_types(STAGING_TYPES)
            for row in rows:
                copy.write_row(row)
        cur.execute(UPSERT if replace else INSERT_NEW)
        return cur.rowcount


def existing_keys(
    conn: psycopg.Connection, keys: Sequence[tuple[str, str, datetime]]
) -> set[tuple[str, str, datetime]]:
    """Which of these (symbol, interval, ts) already have an indicators row."""
    rows = conn.execute(
        SELECT_EXISTING,
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
        prepare=False,  # planned with today's partition sizes (consumer/storage/repository.py)
    ).fetchall()
    return {(symbol, interval, ts) for symbol, interval, ts in rows}


def insert_late_bars(
    conn: psycopg.Connection,
    group: str,
    late: Sequence[tuple[str, str, datetime, datetime, str]],
) -> None:
    """(symbol, interval, ts, newest_ts, event_id) of bars older than their series' newest."""
    columns = list(zip(*late, strict=True))
    conn.execute(INSERT_LATE, (group, *(list(column) for column in columns)))


def load_states(
    conn: psycopg.Connection, group: str, partitions: Sequence[int]
) -> dict[tuple[str, str], StoredSeries]:
    """The stored states of these partitions' series, with the id of each one's periods.

    A state this code cannot read raises StateRestoreError naming the series."""
    rows = conn.execute(SELECT_STATES, (group, list(partitions))).fetchall()
    loaded: dict[tuple[str, str], StoredSeries] = {}
    ids: dict[IndicatorParams, int] = {}
    for symbol, interval, kafka_partition, packed, legacy, last_ts, revision in rows:
        try:
            state = state_document(packed, legacy)
            series = SeriesState.from_state(state, last_ts)
            # A state saved before alerts existed starts its machines quiet.
            alerts = AlertState.from_state(state["alerts"]) if "alerts" in state else AlertState()
        except (KeyError, TypeError, ValueError) as exc:
            raise StateRestoreError(
                f"analytics_state of {symbol}/{interval} ({type(exc).__name__}: {exc})"
            ) from exc
        params = series.indicators.params
        if params not in ids:
            ids[params] = params_id(conn, params)
        loaded[(symbol, interval)] = StoredSeries(
            series, kafka_partition, revision, ids[params], alerts
        )
    return loaded


class PackedSeries(NamedTuple):
    """A series' row of analytics_state as of the end of a batch (pack_states)."""

    packed: bytes  # the state and alert machines, stored form
    kafka_partition: int
    last_ts: datetime | None
    revision: int


def pack_states(
    series: Mapping[tuple[str, str], StoredSeries],
) -> dict[tuple[str, str], PackedSeries]:
    """Each series' analytics_state row as it is now (see save_states). Everything the row needs
    is taken here: the analytics consumer goes on to change these same series in place for its
    next batch while its writer thread saves this one's."""
    return {
        key: PackedSeries(
            encode_state(s.state, s.alerts), s.kafka_partition, s.state.last_ts, s.revision
        )
        for key, s in series.items()
    }


def save_states(
    conn: psycopg.Connection, group: str, packed: Mapping[tuple[str, str], PackedSeries]
) -> None:
    """Write these series' states (pack_states: the analytics consumer packs them while it
    computes, so its writer thread, on which the batch's latency waits, only sends them);
    FencedError if a recompute replaced one meanwhile."""
    if not packed:
        return
    keys = list(packed)
    rows = list(packed.values())
    stored = conn.execute(
        SAVE_STATES,
        (
            group,
            TextArray([key[0] for key in keys]),
            TextArray([key[1] for key in keys]),
            Int4Array([row.kafka_partition for row in rows]),
            ByteaArray([row.packed for row in rows]),
            TimestamptzArray([row.last_ts for row in rows]),
            Int8Array([row.revision for row in rows]),
        ),
    ).fetchall()
    if len(stored) != len(keys):
        replaced = sorted(set(keys) - {(symbol, interval) for symbol, interval in stored})
        names = ", ".join(f"{symbol}/{interval}" for symbol, interval in replaced[:5])
        raise FencedError(f"analytics state of {names} was replaced by a recompute")


def lock_state(conn: psycopg.Connection, group: str, symbol: str, interval: str) -> datetime | None:
    """Lock a series' state row until the transaction ends; its last_ts (None: no state)."""
    row = conn.execute(LOCK_STATE, (group, symbol, interval)).fetchone()
    return None if row is None else row[0]


def replace_state(
    conn: psycopg.Connection,
    group: str,
    symbol: str,
    interval: str,
    state: SeriesState,
    alerts: AlertState | None = None,
) -> int:
    """Overwrite a locked state with a recomputed one (its alert machines too when `alerts` is
    given, else kept as stored, member for member); returns its new revision."""
    if alerts is None:
        document = state.to_state()
        kept = _stored_document(conn, group, symbol, interval).get("alerts")
        if kept is not None:
            document["alerts"] = kept
        packed = encode_document(document)
    else:
        packed = encode_state(state, alerts)
    (row,) = conn.execute(REPLACE_STATE, (packed, group, symbol, interval)).fetchall()
    return int(row[0])


def stored_alerts(conn: psycopg.Connection, group: str, symbol: str, interval: str) -> AlertState:
    """A series' saved alert machines (empty when it has none yet)."""
    alerts = _stored_document(conn, group, symbol, interval).get("alerts")
    return AlertState() if alerts is None else AlertState.from_state(alerts)


def _stored_document(
    conn: psycopg.Connection, group: str, symbol: str, interval: str
) -> dict[str, Any]:
    """A series' stored state document ({} when it has none)."""
    row = conn.execute(SELECT_DOCUMENT, (group, symbol, interval)).fetchone()
    return {} if row is None else state_document(row[0], row[1])


def series_of(conn: psycopg.Connection, group: str) -> list[tuple[str, str]]:
    """Every (symbol, interval) the group keeps a state for."""
    return [(symbol, interval) for symbol, interval in conn.execute(SELECT_SERIES, (group,))]


def last_ts(conn: psycopg.Connection, group: str, symbol: str, interval: str) -> datetime | None:
    row = conn.execute(SELECT_LAST_TS, (group, symbol, interval)).fetchone()
    return None if row is None else row[0]


def has_bar(conn: psycopg.Connection, symbol: str, interval: str, ts: datetime) -> bool:
    """Whether price_bars holds this bar. The storage consumer writes a partition's bars in
    order, so once a series' newest fed bar is there, every earlier one fed is too."""
    (present,) = conn.execute(HAS_BAR, (symbol, interval, ts)).fetchall()
    return bool(present[0])


def adjusted_closes(
    conn: psycopg.Connection, symbol: str, interval: str, until: datetime
) -> list[tuple[datetime, float, float, int]]:
    """(ts, close, split_basis, volume) of a series on its newest basis, oldest first, up to
    `until`."""
    return conn.execute(SELECT_ADJUSTED_CLOSES, (symbol, interval, until)).fetchall()
