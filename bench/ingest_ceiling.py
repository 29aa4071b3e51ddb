"""What the storage consumer's ingest is measured against, in the same run and table.

- `ceiling_rows_per_s`: the same bars decoded, validated and written by the consumer's own write
  path (consumer/storage/repository.write_bars, direct COPY first as the consumer does, one
  transaction per batch) straight from Python:
  what storage could reach without Kafka, the loop and its offsets.
- `copy_rows_per_s`: a plain binary `COPY` of the same rows into price_bars in one transaction:
  the machine's limit for these rows into this table and its indexes.

Each writes into the partitioned price_bars with the bench's rows removed first (their months
are TRUNCATEd: the pre-filled rows live in earlier months), so the table holds what the consumer
wrote into.
"""

from __future__ import annotations

import time
from datetime import datetime

import psycopg
from psycopg import sql

from consumer.storage.repository import prepare_connection, write_bars
from db.partition_catalog import TIME_TABLES, range_parents
from shared.loop.contract import Record
from shared.schemas import Bar, decode
from shared.validation import validate

PRICE_BARS = next(table for table in TIME_TABLES if table.name == "price_bars")
COPY_BARS = """
COPY price_bars (symbol, interval, ts, open, high, low, close, adj_close, volume, split_basis,
                 source, event_id) FROM STDIN (FORMAT BINARY)
"""
COPY_TYPES = [
    "text", "text", "timestamptz", "float8", "float8", "float8", "float8", "float8", "int8",
    "float8", "text", "text",
]  # fmt: skip


def clear_months_from(conn: psycopg.Connection, since: datetime) -> None:
    """TRUNCATE every month partition of price_bars that starts at or after `since`."""
    for parent in range_parents(conn, PRICE_BARS):
        for span, name in parent.partitions.items():
            if span.lower >= since:
                conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(name)))
    conn.commit()


def ceiling_rows_per_s(
    conninfo: str, topic: str, messages: list[tuple[bytes, bytes]], batch_size: int
) -> float:
    with psycopg.connect(conninfo) as conn:
        prepare_connection(conn)
        started = time.perf_counter()
        for first in range(0, len(messages), batch_size):
            records = []
            for offset, (key, value) in enumerate(messages[first : first + batch_size], first):
                bar = decode(value, Bar)
                validate(bar)
                records.append(Record(topic, 0, offset, key, bar, 0))
            result = write_bars(conn, records, direct=True)  # as the consumer tries first
            conn.commit()
            if result.inserted != len(records):
                raise SystemExit(f"bench.ingest: the ceiling run inserted {result.inserted} rows")
        return len(messages) / (time.perf_counter() - started)


def copy_rows_per_s(conninfo: str, messages: list[tuple[bytes, bytes]]) -> float:
    rows = []
    for _key, value in messages:
        bar = decode(value, Bar)
        rows.append(
            (
                bar.symbol, bar.interval, bar.ts, bar.open, bar.high, bar.low, bar.close,
                bar.adj_close, bar.volume, bar.split_basis, bar.source, bar.event_id,
            )
        )  # fmt: skip
    with psycopg.connect(conninfo) as conn:
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(COPY_BARS) as copy:
            copy.set_types(COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return len(rows) / (time.perf_counter() - started)
