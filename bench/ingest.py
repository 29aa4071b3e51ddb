"""Storage-consumer ingest bench: drain a pre-filled topic, then latency at a steady rate.

Into a `price_bars` that already holds rows, in both layouts in the same run: partitioned (the
schema the pipeline runs, 0008) and unpartitioned (one table with the primary key, as before
0008). `python -m bench.ingest` (full: 10 million rows already in the table) or `--smoke` (the
size `make test` runs). Prints name=value.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg

from bench.harness import (
    BenchTarget,
    Service,
    consumer_arguments,
    drain_rate,
    emit,
    emit_settings,
    fresh_target,
    measure_consumer,
    prefill_topic,
    synthetic_bars,
)
from bench.ingest_ceiling import ceiling_rows_per_s, clear_months_from, copy_rows_per_s
from db.bootstrap import bootstrap
from db.partitions import ensure_range
from shared.settings import RetentionSettings

# Rows already in the table are spread over the two years before anything the bench publishes
# (prefill_topic starts on 2024-01-02, the steady phase on 2025-01-06): the months from
# PREFILL_END on hold only what the bench wrote.
PREFILL_START = datetime(2022, 1, 1, tzinfo=UTC)
PREFILL_END = datetime(2024, 1, 1, tzinfo=UTC)
TOPIC_START = datetime(2024, 1, 2, tzinfo=UTC)
PUBLISHED_END = datetime(2025, 2, 1, tzinfo=UTC)
# Generated in the server: 10 million rows through Python's COPY would dominate the run.
PREFILL = """
INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, volume, source, event_id)
SELECT 'S' || lpad(s::text, 4, '0'), '1m', %(start)s + i * %(step)s, 10, 11, 9, 10.5, 100,
       'bench', s || '-' || i
FROM generate_series(0, %(symbols)s - 1) AS s, generate_series(0, %(per_symbol)s - 1) AS i
"""
# The layout before 0008: one table, its primary key and the daily session-date index.
UNPARTITION = """
ALTER TABLE price_bars RENAME TO price_bars_partitioned;
CREATE TABLE price_bars (LIKE price_bars_partitioned INCLUDING DEFAULTS,
                         PRIMARY KEY (symbol, interval, ts));
CREATE INDEX price_bars_flat_session_date ON price_bars (((ts AT TIME ZONE 'UTC')::date))
    WHERE interval = '1d';
"""


def prepare_layout(target: BenchTarget, layout: str) -> None:
    """Partitioned: the months the bench writes exist (as upkeep would have made them), so no
    row goes through a default partition. Unpartitioned: price_bars as before 0008."""
    with psycopg.connect(target.postgres.conninfo(), autocommit=True) as conn:
        if layout == "partitioned":
            ensure_range(
                conn, RetentionSettings(), "price_bars", "1m", PREFILL_START, PUBLISHED_END
            )
        else:
            conn.execute(UNPARTITION)
    # consumer.storage logs in as the writer role: its grants, after the DDL above (idempotent).
    bootstrap(target.postgres, target.postgres.dbname)


def prefill_table(target: BenchTarget, symbols: int, per_symbol: int) -> int:
    """Rows already in price_bars (older timestamps than anything the bench publishes)."""
    step = (PREFILL_END - PREFILL_START) / per_symbol
    with psycopg.connect(target.postgres.conninfo()) as conn:
        conn.execute(
            PREFILL,
            {"start": PREFILL_START, "step": step, "symbols": symbols, "per_symbol": per_symbol},
        )
        conn.commit()
        conn.execute("ANALYZE price_bars")
        return conn.execute("SELECT count(*) FROM price_bars").fetchone()[0]


def partitions_of(target: BenchTarget) -> int:
    with psycopg.connect(target.postgres.conninfo()) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_partition_tree('price_bars') WHERE isleaf"
        ).fetchone()[0]


class _Tee(io.TextIOBase):
    """Copies what the harness prints, so this bench can read its figures back."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def write(self, text: str) -> int:
        self.seen.append(text)
        return sys.__stdout__.write(text) if sys.__stdout__ else len(text)

    def figure(self, name: str) -> float:
        lines = "".join(self.seen).splitlines()
        return float(next(line for line in lines if line.startswith(f"{name}=")).split("=", 1)[1])


@contextmanager
def captured() -> Iterator[_Tee]:
    tee = _Tee()
    previous, sys.stdout = sys.stdout, tee
    try:
        yield tee
    finally:
        sys.stdout = previous


def drain_only(target: BenchTarget, batch_size: int, published: int) -> float:
    """bars_per_s of consumer.storage draining the pre-filled topic (no steady phase)."""
    consumer = Service("consumer.storage", target, CONSUMER_BATCH_SIZE=str(batch_size))
    try:
        consumer.wait_ready()
        return drain_rate(target, published, timeout=1800)
    finally:
        consumer.stop()


def run_layout(layout: str, args: argparse.Namespace, full: bool) -> float:
    """One layout in its own fresh database and topics; returns its bars_per_s."""
    with fresh_target(f"ingest_{layout}") as target:
        prepare_layout(target, layout)
        existing = prefill_table(target, args.symbols, max(1, args.existing_rows // args.symbols))
        published = prefill_topic(target, args.symbols, args.bars)
        emit("layout", layout)
        emit_settings(
            target,
            symbols=args.symbols,
            batch_size=args.batch_size,
            rows_in_table=existing,
            price_bars_partitions=partitions_of(target),
            topic_bars=published,
        )
        if full:
            with captured() as tee:
                consumed = measure_consumer(target, "consumer.storage", args, published)
            rate = tee.figure("bars_per_s")
        else:
            rate = drain_only(target, args.batch_size, published)
            emit("bars_per_s", rate)
            consumed = published
        with psycopg.connect(target.postgres.conninfo()) as conn:
            stored = conn.execute("SELECT count(*) FROM price_bars").fetchone()[0]
        if stored != existing + consumed:
            raise SystemExit(
                f"bench.ingest: price_bars holds {stored} rows, expected {existing + consumed}"
            )
        if full:
            compare_with_ceiling(target, args, rate)
    return rate


def compare_with_ceiling(target: BenchTarget, args: argparse.Namespace, rate: float) -> None:
    """The same bars written without Kafka by the same write path, then by a plain COPY, into
    the same table (bench/ingest_ceiling.py); `ratio_to_ceiling`: how close the consumer gets."""
    messages = synthetic_bars(args.symbols, max(1, args.bars // args.symbols), TOPIC_START)
    conninfo = target.postgres.conninfo()
    with psycopg.connect(conninfo) as conn:
        clear_months_from(conn, PREFILL_END)
    ceiling = ceiling_rows_per_s(conninfo, target.topics.market_bars, messages, args.batch_size)
    with psycopg.connect(conninfo) as conn:
        clear_months_from(conn, PREFILL_END)
    emit("ceiling_rows_per_s", ceiling)
    emit("copy_rows_per_s", copy_rows_per_s(conninfo, messages))
    emit("ratio_to_ceiling", rate / ceiling)


def main(argv: list[str] | None = None) -> int:
    parser = consumer_arguments("python -m bench.ingest")
    parser.add_argument("--existing-rows", type=int, default=10_000_000)
    parser.set_defaults(bars=1_000_000)  # the proof issue's size: a million bars in the topic
    args = parser.parse_args(argv)
    if args.smoke:
        args.bars, args.existing_rows, args.seconds, args.symbols = 5_000, 10_000, 3.0, 50

    # The pipeline's layout gets the whole bench (drain, then latency at a steady rate); the
    # layout before 0008 the drain only, into the same number of rows, for the comparison.
    partitioned = run_layout("partitioned", args, full=True)
    unpartitioned = run_layout("unpartitioned", args, full=False)
    emit("bars_per_s_partitioned", partitioned)
    emit("bars_per_s_unpartitioned", unpartitioned)
    emit("partitioned_vs_unpartitioned", partitioned / unpartitioned)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
