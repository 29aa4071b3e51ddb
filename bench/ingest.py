"""Storage-consumer ingest bench: drain a pre-filled topic, then latency at a steady rate.

`python -m bench.ingest` (full) or `--smoke` (the size `make test` runs). Prints name=value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from bench.harness import (
    BenchTarget,
    consumer_arguments,
    emit_settings,
    fresh_target,
    measure_consumer,
    prefill_topic,
)


def prefill_table(target: BenchTarget, symbols: int, per_symbol: int) -> int:
    """Rows already in price_bars (older timestamps than anything the bench publishes)."""
    start = datetime(2020, 1, 1, tzinfo=UTC)
    with psycopg.connect(target.postgres.conninfo()) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY price_bars (symbol, interval, ts, open, high, low, close, volume, source,"
            " event_id) FROM STDIN"
        ) as copy:
            for s in range(symbols):
                symbol = f"S{s:04d}"
                for i in range(per_symbol):
                    ts = start + timedelta(minutes=i)
                    copy.write_row(
                        (symbol, "1m", ts, 10.0, 11.0, 9.0, 10.5, 100, "bench", f"{s}-{i}")
                    )
        conn.execute("ANALYZE price_bars")
        return conn.execute("SELECT count(*) FROM price_bars").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    parser = consumer_arguments("python -m bench.ingest")
    parser.add_argument("--existing-rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    if args.smoke:
        args.bars, args.existing_rows, args.seconds, args.symbols = 5_000, 10_000, 3.0, 50

    with fresh_target("ingest") as target:
        existing = prefill_table(target, args.symbols, max(1, args.existing_rows // args.symbols))
        published = prefill_topic(target, args.symbols, args.bars)
        emit_settings(
            target,
            symbols=args.symbols,
            batch_size=args.batch_size,
            rows_in_table=existing,
            topic_bars=published,
        )
        consumed = measure_consumer(target, "consumer.storage", args, published)
        with psycopg.connect(target.postgres.conninfo()) as conn:
            stored = conn.execute("SELECT count(*) FROM price_bars").fetchone()[0]
        if stored != existing + consumed:
            raise SystemExit(
                f"bench.ingest: price_bars holds {stored} rows, expected {existing + consumed}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
