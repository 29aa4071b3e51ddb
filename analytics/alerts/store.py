"""alert_events in PostgreSQL: the writers' insert, the relay's outbox queries, the followers' read.

Ids become visible in id order. Every insert runs as the last statements of its writer's
transaction (the analytics consumer's and the forecaster's `Handler.finish`) under one
transaction-scoped advisory lock, held until COMMIT: a writer that takes the lock after another
gets larger ids, and gets the lock only once the other's rows are visible (PostgreSQL makes a
transaction visible before it releases its locks). So a follower that reads
`WHERE id > last_seen ORDER BY id` never skips an id that commits later with a smaller number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg
from psycopg import sql

from shared.metrics import UPSERT_CONFLICTS
from shared.pg_arrays import BoolArray, Float8Array, TextArray, TimestamptzArray

# pg_advisory_xact_lock key of every alert insert ("alertins" as a bigint).
INSERT_LOCK_KEY = int.from_bytes(b"alertins", "big")
# pg_try_advisory_lock key (session) of the one active relay ("alertrly").
RELAY_LOCK_KEY = int.from_bytes(b"alertrly", "big")
# NOTIFY channel: one notification per inserting transaction, its payload the largest id
# inserted. A wake-up only: followers read the table from their last id, so a lost or merged
# notification can delay them (until their poll) but never make them skip.
CHANNEL = "alerts"
SINKS = ("webhook", "alertmanager")
Sink = Literal["webhook", "alertmanager"]


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One state change of an alert machine, as a writer inserts it (the engine's Transition has
    the same fields)."""

    fingerprint: str  # 32 hex digits: (rule, symbol, interval[, direction])
    rule_id: str
    rules_version: str
    severity: str
    symbol: str
    interval: str
    state: Literal["firing", "resolved"]
    value: float | None
    threshold: float | None
    message: str
    bar_ts: datetime
    historical: bool


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A stored event, as the relay and followers read it."""

    id: int
    fingerprint: str
    rule: str
    rules_version: str
    severity: str
    symbol: str
    interval: str
    state: str
    value: float | None
    threshold: float | None
    message: str
    bar_ts: datetime
    prev_event_id: int | None
    prev_bar_ts: datetime | None  # the previous event's bar (a resolved alert's firing start)
    historical: bool
    created_at: datetime


LOCK_INSERTS = "SELECT pg_advisory_xact_lock(%s)"
# The whole batch in one statement (a row per round trip made the insert the second largest cost
# of the analytics consumer's transaction). It does what inserting the rows one by one, in their
# order, each chained to `max(id)` of its fingerprint, would do:
# - `fresh`: the rows to insert: those whose (fingerprint, bar_ts, state) is not stored yet (a
#   replaying group meets its earlier rows here and skips them), each key once (its first row);
# - `numbered`: their ids, drawn from the sequence in the rows' order (volatile expressions of an
#   ORDER BY query are evaluated after the sort);
# - `chained`: each row's prev_event_id: the row before it of its fingerprint in this batch, or,
#   for the first, the newest id of the fingerprint in the table, read under the advisory lock
#   (taken by the statement before, so this statement's snapshot sees every earlier writer's
#   rows) and never from the writer's memory.
# ON CONFLICT stays as the guard of the natural key; the UNIQUE prev_event_id still refuses a fork.
# The NOTIFY, with the largest id inserted, is sent by the same statement when it inserted rows.
INSERT_EVENTS = """
WITH batch AS (
    SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                         %b::text[], %b::float8[], %b::float8[], %b::text[], %b::timestamptz[],
                         %b::boolean[]) WITH ORDINALITY
        AS w(fingerprint, rule, rules_version, severity, symbol, interval, state, value,
             threshold, message, bar_ts, historical, ord)
), fresh AS (
    SELECT DISTINCT ON (b.fingerprint, b.bar_ts, b.state) b.*
    FROM batch b
    WHERE NOT EXISTS (
        SELECT 1 FROM alert_events e
        WHERE e.fingerprint = b.fingerprint AND e.bar_ts = b.bar_ts AND e.state = b.state
    )
    ORDER BY b.fingerprint, b.bar_ts, b.state, b.ord
), numbered AS MATERIALIZED (
    SELECT f.*, nextval('alert_events_id_seq') AS id
    FROM fresh f
    ORDER BY f.ord
), chained AS (
    SELECT n.*, coalesce(
        lag(n.id) OVER (PARTITION BY n.fingerprint ORDER BY n.ord),
        (SELECT max(e.id) FROM alert_events e WHERE e.fingerprint = n.fingerprint)
    ) AS prev_event_id
    FROM numbered n
), inserted AS (
    INSERT INTO alert_events (id, fingerprint, rule, rules_version, severity, symbol, interval,
                              state, value, threshold, message, bar_ts, historical, prev_event_id)
    SELECT id, fingerprint, rule, rules_version, severity, symbol, interval, state, value,
           threshold, message, bar_ts, historical, prev_event_id
    FROM chained
    ORDER BY ord
    ON CONFLICT (fingerprint, bar_ts, state) DO NOTHING
    RETURNING id
)
SELECT array_agg(id ORDER BY id), pg_notify(%s, max(id)::text)
FROM inserted
HAVING count(*) > 0
"""

_SELECT_EVENTS = """
SELECT e.id, e.fingerprint, e.rule, e.rules_version, e.severity, e.symbol, e.interval, e.state,
       e.value, e.threshold, e.message, e.bar_ts, e.prev_event_id, p.bar_ts, e.historical,
       e.created_at
FROM alert_events e
LEFT JOIN alert_events p ON p.id = e.prev_event_id
"""
EVENTS_AFTER = _SELECT_EVENTS + "WHERE e.id > %s ORDER BY e.id LIMIT %s"
LAST_ID = "SELECT coalesce(max(id), 0) FROM alert_events"
UNPUBLISHED = _SELECT_EVENTS + "WHERE e.published_at IS NULL ORDER BY e.id LIMIT %s"
MARK_PUBLISHED = """
UPDATE alert_events SET published_at = now() WHERE id = ANY(%s) AND published_at IS NULL
"""
UNPUBLISHED_COUNT = "SELECT count(*) FROM alert_events WHERE published_at IS NULL"
TRY_RELAY_LOCK = "SELECT pg_try_advisory_lock(%s)"
# Per sink: {d} its delivered_at column, {s} its skipped column, {events} _SELECT_EVENTS.
SINK_PENDING = "{events} WHERE e.{d} IS NULL ORDER BY e.id LIMIT %s"
MARK_DELIVERED = "UPDATE alert_events SET {d} = now() WHERE id = %s AND {d} IS NULL"
SKIP_HISTORICAL = "UPDATE alert_events SET {d} = now(), {s} = %s WHERE {d} IS NULL AND historical"
# A historical event is skipped as historical whichever pass meets it first (one inserted
# between a round's historical pass and its not-configured pass, too).
SKIP_ALL = """UPDATE alert_events SET {d} = now(),
    {s} = CASE WHEN historical THEN 'historical' ELSE %s END
WHERE {d} IS NULL"""
SINK_BACKLOG = "SELECT count(*) FROM alert_events WHERE {d} IS NULL"
# Alerts firing now (no later event points at the firing one) that the sink was given.
DELIVERED_ACTIVE = """{events}
WHERE e.state = 'firing' AND e.{d} IS NOT NULL AND e.{s} IS NULL
  AND NOT EXISTS (SELECT 1 FROM alert_events n WHERE n.prev_event_id = e.id)
ORDER BY e.id"""


def insert_alert_events(conn: psycopg.Connection, rows: Sequence[AlertRow]) -> list[int]:
    """Insert `rows` (in their order) inside the caller's transaction; the ids inserted, in
    order.

    The caller's LAST statements before COMMIT: the advisory lock is held until then. A lock
    wait past the session's lock_timeout raises LockNotAvailable (55P03), which the consumer
    loop retries. Rows already stored (a replay) are skipped and counted as upsert conflicts.
    """
    if not rows:
        return []
    conn.execute(LOCK_INSERTS, (INSERT_LOCK_KEY,))
    found = conn.execute(INSERT_EVENTS, (*_columns(rows), CHANNEL)).fetchone()
    ids: list[int] = [] if found is None else found[0]
    if len(ids) < len(rows):
        UPSERT_CONFLICTS.labels("alert_events").inc(len(rows) - len(ids))
    return ids


# INSERT_EVENTS' column types, in AlertRow's field order.
_COLUMN_ARRAYS = (
    *[TextArray] * 7,  # fingerprint … state
    Float8Array,  # value
    Float8Array,  # threshold
    TextArray,  # message
    TimestamptzArray,  # bar_ts
    BoolArray,  # historical
)


def _columns(rows: Sequence[AlertRow]) -> list[list[object]]:
    """The rows as one binary array per column (shared/pg_arrays.py), in INSERT_EVENTS' order
    (AlertRow's field order)."""
    columns = zip(*(_fields(row) for row in rows), strict=True)
    return [kind(column) for kind, column in zip(_COLUMN_ARRAYS, columns, strict=True)]


def _fields(row: AlertRow) -> tuple[object, ...]:
    return (
        row.fingerprint,
        row.rule_id,
        row.rules_version,
        row.severity,
        row.symbol,
        row.interval,
        row.state,
        row.value,
        row.threshold,
        row.message,
        row.bar_ts,
        row.historical,
    )


def events_after(conn: psycopg.Connection, last_id: int, limit: int) -> list[AlertEvent]:
    """The events with id > last_id, in id order (a follower's read)."""
    return [AlertEvent(*r) for r in conn.execute(EVENTS_AFTER, (last_id, limit)).fetchall()]


def last_id(conn: psycopg.Connection) -> int:
    """The largest id committed now (0 when there is none): where "from now" starts."""
    row = conn.execute(LAST_ID).fetchone()
    return int(row[0]) if row else 0


def try_relay_lock(conn: psycopg.Connection) -> bool:
    """Take the relay's session lock if nobody holds it (held until `conn` closes)."""
    row = conn.execute(TRY_RELAY_LOCK, (RELAY_LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def unpublished(conn: psycopg.Connection, limit: int) -> list[AlertEvent]:
    return [AlertEvent(*r) for r in conn.execute(UNPUBLISHED, (limit,)).fetchall()]


def mark_published(conn: psycopg.Connection, ids: Sequence[int]) -> None:
    conn.execute(MARK_PUBLISHED, (list(ids),))


def unpublished_count(conn: psycopg.Connection) -> int:
    row = conn.execute(UNPUBLISHED_COUNT).fetchone()
    return int(row[0]) if row else 0


def _sink_sql(template: str, sink: Sink) -> sql.Composed:
    if sink not in SINKS:
        raise ValueError(f"unknown sink {sink!r}")
    return sql.SQL(template).format(
        events=sql.SQL(_SELECT_EVENTS),
        d=sql.Identifier(f"{sink}_delivered_at"),
        s=sql.Identifier(f"{sink}_skipped"),
    )


def sink_pending(conn: psycopg.Connection, sink: Sink, limit: int) -> list[AlertEvent]:
    """Events `sink` has not been given yet, in id order."""
    rows = conn.execute(_sink_sql(SINK_PENDING, sink), (limit,)).fetchall()
    return [AlertEvent(*r) for r in rows]


def mark_delivered(conn: psycopg.Connection, sink: Sink, event_id: int) -> None:
    conn.execute(_sink_sql(MARK_DELIVERED, sink), (event_id,))


def skip_pending(
    conn: psycopg.Connection, sink: Sink, reason: str, *, historical_only: bool
) -> int:
    """Mark pending events as deliberately not sent to `sink` (historical ones, or all of them
    when the sink is not configured); how many were marked."""
    template = SKIP_HISTORICAL if historical_only else SKIP_ALL
    return conn.execute(_sink_sql(template, sink), (reason,)).rowcount


def sink_backlog(conn: psycopg.Connection, sink: Sink) -> int:
    row = conn.execute(_sink_sql(SINK_BACKLOG, sink)).fetchone()
    return int(row[0]) if row else 0


def delivered_active(conn: psycopg.Connection, sink: Sink) -> list[AlertEvent]:
    """Alerts firing now whose firing event `sink` was given (not skipped): to post again."""
    return [AlertEvent(*r) for r in conn.execute(_sink_sql(DELIVERED_ACTIVE, sink)).fetchall()]
