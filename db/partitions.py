"""Partition upkeep: create time partitions ahead, move rows out of the defaults, apply retention.

Run as the owner role (the DDL here is what the writer role may not do) by `python -m db
migrate` and the monitor service (pipeline/monitor), with an autocommit connection: each step
is its own short transaction under RETENTION_LOCK_TIMEOUT_MS, so upkeep never holds a lock for
long nor queues readers behind it; a step that times out is reported and retried next round.
What to create or drop is decided by db/partition_plan.py (pure); this module reads the catalog
and runs the statements.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import errors, sql

from db.partition_catalog import (
    TIME_TABLES,
    RangeParent,
    TimeTable,
    is_partitioned,
    range_parent,
    range_parents,
)
from db.partition_plan import (
    Span,
    expired,
    partition_name,
    plan_creates,
    retention_cutoff,
    span_of,
    uncovered,
)
from shared.settings import RetentionSettings, Settings
from shared.validation import INTERVALS

logger = logging.getLogger(__name__)

# A step that met a lock held too long (or a deadlock PostgreSQL broke) is retried next round.
GAVE_UP = (errors.LockNotAvailable, errors.DeadlockDetected)
# Retention of the unpartitioned tables, by the time each row arrived: (table, settings field).
ROW_RETENTION = (("dead_letters", "dead_letters_days"), ("late_bars", "late_bars_days"))
DELETE_BATCH = 10_000


@dataclass
class UpkeepReport:
    """What ensure_partitions did: partitions created, rows moved out of defaults, steps that
    gave up on a lock (retried next round)."""

    created: list[str] = field(default_factory=list)
    moved_rows: int = 0
    skipped: list[str] = field(default_factory=list)


@dataclass
class RetentionReport:
    """What apply_retention did: partitions dropped or detached, rows deleted per table."""

    removed: list[str] = field(default_factory=list)
    deleted_rows: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _retention(settings: Settings | RetentionSettings) -> RetentionSettings:
    return settings.retention if isinstance(settings, Settings) else settings


def _lock_timeout(conn: psycopg.Connection, timeout_ms: int) -> None:
    """Within the current transaction: give up on a lock after timeout_ms (LockNotAvailable)."""
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{timeout_ms}ms")))


def _ensure_interval_parents(
    conn: psycopg.Connection, table: TimeTable, retention: RetentionSettings, report: UpkeepReport
) -> None:
    """A RANGE parent (and its default) per interval the consumers accept (shared/validation)."""
    have = {parent.interval for parent in range_parents(conn, table)}
    for interval in sorted(INTERVALS - have):
        parent = f"{table.name}_{interval}"
        try:
            with conn.transaction():
                _lock_timeout(conn, retention.lock_timeout_ms)
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} PARTITION OF {} FOR VALUES IN ({}) PARTITION BY RANGE ({})"
                    ).format(
                        sql.Identifier(parent),
                        sql.Identifier(table.name),
                        sql.Literal(interval),
                        sql.Identifier(table.key),
                    )
                )
                conn.execute(
                    sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT").format(
                        sql.Identifier(f"{parent}_default"), sql.Identifier(parent)
                    )
                )
            report.created.extend([parent, f"{parent}_default"])
        except GAVE_UP:
            report.skipped.append(parent)


def _create_partition(
    conn: psycopg.Connection,
    parent: RangeParent,
    key: str,
    span: Span,
    timeout_ms: int,
) -> tuple[str, int]:
    """Create `span`'s partition, moving its rows out of the default first (one transaction).

    Built beside the parent and then attached: ATTACH takes only SHARE UPDATE EXCLUSIVE on the
    parent (CREATE … PARTITION OF would take ACCESS EXCLUSIVE), and ACCESS EXCLUSIVE on the
    default, which it checks for rows of the span. That lock is taken first, before its rows of
    the span move out: taken later (an upgrade) it could deadlock with a writer that planned
    over the default and then routes a row into it. Milliseconds when the default is empty;
    queries on the interval wait that long.
    """
    name = partition_name(parent.name, span)
    moved = 0
    with conn.transaction():
        _lock_timeout(conn, timeout_ms)
        if parent.default is not None:
            conn.execute(
                sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                    sql.Identifier(parent.default)
                )
            )
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
                sql.Identifier(name), sql.Identifier(parent.name)
            )
        )
        if parent.default is not None:
            moved = conn.execute(
                sql.SQL(
                    "WITH moved AS (DELETE FROM {default}"
                    " WHERE {key} >= {lower} AND {key} < {upper} RETURNING *)"
                    " INSERT INTO {name} SELECT * FROM moved"
                ).format(
                    default=sql.Identifier(parent.default),
                    key=sql.Identifier(key),
                    lower=sql.Literal(span.lower),
                    upper=sql.Literal(span.upper),
                    name=sql.Identifier(name),
                )
            ).rowcount
        conn.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(parent.name),
                sql.Identifier(name),
                sql.Literal(span.lower),
                sql.Literal(span.upper),
            )
        )
    return name, moved


def ensure_partitions(
    conn: psycopg.Connection, settings: Settings | RetentionSettings, now: datetime
) -> UpkeepReport:
    """Create the partitions from `now`'s span to RETENTION_PARTITIONS_AHEAD spans later, and
    move every row the defaults hold into its own span's partition (created for it).

    Idempotent; a database not yet migrated to partitioned tables is left alone. `conn` must be
    autocommit (each step commits on its own)."""
    retention = _retention(settings)
    report = UpkeepReport()
    for table in TIME_TABLES:
        if not is_partitioned(conn, table.name):
            continue
        if table.per_interval:
            _ensure_interval_parents(conn, table, retention, report)
        for parent in range_parents(conn, table):
            in_default: list[datetime] = []
            if parent.default is not None:
                in_default = [
                    row[0]
                    for row in conn.execute(
                        sql.SQL("SELECT DISTINCT date_trunc('month', {}, 'UTC') FROM {}").format(
                            sql.Identifier(table.key), sql.Identifier(parent.default)
                        )
                    ).fetchall()
                ]
            spans = plan_creates(
                list(parent.partitions),
                now,
                retention.partition_months,
                retention.partitions_ahead,
                in_default,
            )
            for span in spans:
                try:
                    name, moved = _create_partition(
                        conn, parent, table.key, span, retention.lock_timeout_ms
                    )
                except GAVE_UP:
                    report.skipped.append(partition_name(parent.name, span))
                    continue
                report.created.append(name)
                report.moved_rows += moved
    if report.created or report.skipped:
        logger.info(
            "partitions: %d created, %d rows moved out of defaults, %d skipped (locked): %s",
            len(report.created),
            report.moved_rows,
            len(report.skipped),
            ", ".join(report.skipped),
        )
    return report


def ensure_range(
    conn: psycopg.Connection,
    settings: Settings | RetentionSettings,
    table: str,
    interval: str | None,
    start: datetime,
    end: datetime,
) -> list[str]:
    """Create the partitions of `table` (and `interval`, for bars and indicators) covering
    [start, end) before a large backfill of that range, so its rows go straight to their month
    instead of through the default. Returns the partitions created."""
    retention = _retention(settings)
    spec = next(t for t in TIME_TABLES if t.name == table)
    name = f"{table}_{interval}" if spec.per_interval else table
    parent = range_parent(conn, name, interval)
    wanted: set[Span] = set()
    span = span_of(start, retention.partition_months)
    while span.lower < end:
        wanted.update(uncovered(span, list(parent.partitions)))
        span = span_of(span.upper, retention.partition_months)
    created = []
    for piece in sorted(wanted):
        created.append(
            _create_partition(conn, parent, spec.key, piece, retention.lock_timeout_ms)[0]
        )
    return created


def _remove_partition(
    conn: psycopg.Connection, parent: str, name: str, action: str, timeout_ms: int
) -> None:
    """Drop the partition, or detach it and keep it as `<name>_detached` to archive."""
    with conn.transaction():
        _lock_timeout(conn, timeout_ms)
        # The parent first, as writers lock it (then the partition): no lock-order deadlock.
        conn.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(parent))
        )
        if action == "drop":
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
        else:
            conn.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                    sql.Identifier(parent), sql.Identifier(name)
                )
            )
            conn.execute(
                sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    sql.Identifier(name), sql.Identifier(f"{name}_detached")
                )
            )


# Series whose newest bar is past the cutoff and that have no bar left (retention fires no
# DELETE trigger): latest_bars must not list them.
FORGET_SERIES = """
DELETE FROM price_bar_series s
WHERE s.interval = %s AND s.newest_ts < %s
  AND NOT EXISTS (SELECT 1 FROM price_bars p WHERE p.symbol = s.symbol AND p.interval = s.interval)
"""


def _table_days(retention: RetentionSettings, table: TimeTable, interval: str | None) -> int | None:
    if table.per_interval:
        per_interval: dict[str, int | None] = getattr(retention, f"{table.name}_days")
        return per_interval.get(interval or "")
    return getattr(retention, f"{table.name}_days")


def apply_retention(
    conn: psycopg.Connection, settings: Settings | RetentionSettings, now: datetime
) -> RetentionReport:
    """Drop (or detach) every partition whose rows are all older than its table's and
    interval's retention, and delete dead letters and late bars past theirs in small batches.

    A partition goes only when its upper bound is at or before now - retention: a row at or
    after that instant is never touched. Call after ensure_partitions, which moves old rows out
    of the defaults into partitions this can drop. `conn` must be autocommit."""
    retention = _retention(settings)
    report = RetentionReport()
    for table in TIME_TABLES:
        if not is_partitioned(conn, table.name):
            continue
        for parent in range_parents(conn, table):
            cutoff = retention_cutoff(now, _table_days(retention, table, parent.interval))
            for span in expired(list(parent.partitions), cutoff):
                name = parent.partitions[span]
                try:
                    _remove_partition(
                        conn, parent.name, name, retention.action, retention.lock_timeout_ms
                    )
                except GAVE_UP:
                    report.skipped.append(name)
                    continue
                report.removed.append(name)
            if table.name == "price_bars" and cutoff is not None:
                with conn.transaction():
                    conn.execute(FORGET_SERIES, (parent.interval, cutoff))
    for table_name, days_field in ROW_RETENTION:
        cutoff = retention_cutoff(now, getattr(retention, days_field))
        if cutoff is not None:
            report.deleted_rows[table_name] = _delete_before(conn, table_name, cutoff)
    if report.removed or report.skipped or any(report.deleted_rows.values()):
        logger.info(
            "retention: %d partitions %s (%s), %s rows deleted, %d skipped (locked)",
            len(report.removed),
            "dropped" if retention.action == "drop" else "detached",
            ", ".join(report.removed),
            report.deleted_rows,
            len(report.skipped),
        )
    return report


def _delete_before(conn: psycopg.Connection, table: str, cutoff: datetime) -> int:
    """Delete rows received before the cutoff, DELETE_BATCH at a time (short transactions)."""
    statement = sql.SQL(
        "DELETE FROM {table} WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table}"
        " WHERE received_at < %s LIMIT {batch}))"
    ).format(table=sql.Identifier(table), batch=sql.Literal(DELETE_BATCH))
    total = 0
    while True:
        with conn.transaction():
            deleted = conn.execute(statement, (cutoff,)).rowcount
        total += deleted
        if deleted < DELETE_BATCH:
            return total
