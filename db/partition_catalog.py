"""The time-partitioned tables and how to read their partitions from the catalog."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from db.partition_plan import Span


@dataclass(frozen=True)
class TimeTable:
    """A time-partitioned table: by interval then `key` (per_interval), or by `key` alone."""

    name: str
    key: str
    per_interval: bool


TIME_TABLES = (
    TimeTable("price_bars", "ts", per_interval=True),
    TimeTable("indicators", "ts", per_interval=True),
    TimeTable("forecasts", "origin_ts", per_interval=False),
    TimeTable("forecast_errors", "origin_ts", per_interval=False),
)
IS_PARTITIONED = "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)"
# Children of a partitioned table with their bounds, read back as values in this session (the
# bound text is printed and cast in the same TimeZone, so the instants are exact).
CHILDREN = """
SELECT c.relname, c.relkind = 'p',
       pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',
       (regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES IN \\(''(.*)''\\)$'))[1],
       (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''(.*)''\\) TO'))[1]::timestamptz,
       (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''(.*)''\\)$'))[1]::timestamptz
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass(%s)
ORDER BY c.relname
"""


@dataclass(frozen=True)
class RangeParent:
    """One RANGE-partitioned parent: its month partitions and its default partition."""

    name: str
    interval: str | None
    partitions: dict[Span, str]
    default: str | None


def is_partitioned(conn: psycopg.Connection, table: str) -> bool:
    """Whether `table` exists and is partitioned (false before migration 0008)."""
    row = conn.execute(IS_PARTITIONED, (table,)).fetchone()
    return bool(row and row[0])


def range_parent(conn: psycopg.Connection, name: str, interval: str | None) -> RangeParent:
    """A RANGE parent's partitions by their bounds, and its default partition."""
    partitions: dict[Span, str] = {}
    default = None
    for relname, _, is_default, _, lower, upper in conn.execute(CHILDREN, (name,)).fetchall():
        if is_default:
            default = relname
        elif lower is not None and upper is not None:
            partitions[Span(lower, upper)] = relname
    return RangeParent(name, interval, partitions, default)


def range_parents(conn: psycopg.Connection, table: TimeTable) -> list[RangeParent]:
    """Every RANGE parent of a table: one per interval partition, or the table itself."""
    if not table.per_interval:
        return [range_parent(conn, table.name, None)]
    return [
        range_parent(conn, relname, interval)
        for relname, partitioned, _, interval, _, _ in conn.execute(
            CHILDREN, (table.name,)
        ).fetchall()
        if partitioned and interval is not None
    ]
