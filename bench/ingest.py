"""Storage-consumer ingest bench: drain a pre-filled topic, then latency at a steady rate.

`python -m bench.ingest` (full) or `--smoke` (the size `make test` runs). Prints name=value.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import psycopg

from bench.harness import (
    BenchTarget,
    Service,
    emit,
    emit_settings,
    fresh_target,
    histogram_quantile,
    produce_all,
)
from shared.kafka import make_producer
from shared.schemas import Bar, encode, event_id

LATENCY_METRIC = "pipeline_commit_latency_seconds_bucket"


def synthetic_bars(symbols: int, per_symbol: int, start: datetime) -> list[tuple[bytes, bytes]]:
    """Encoded one-minute bars (synthetic prices; the bench measures the pipeline, not data)."""
    messages = []
    fetched_at = datetime.now(UTC)
    for s in range(symbols):
        symbol = f"S{s:04d}"
        key = symbol.encode()
        for i in range(per_symbol):
            ts = start + timedelta(minutes=i)
            price = 50.0 + s * 0.1 + i * 0.001
            bar = Bar(
                event_id=event_id("bench", symbol, "1m", ts),
                source="bench",
                symbol=symbol,
                interval="1m",
                ts=ts,
                open=price,
                high=price + 0.05,
                low=price - 0.05,
                close=price + 0.01,
                adj_close=None,
                volume=100 + i,
                fetched_at=fetched_at,
            )
            messages.append((key, encode(bar)))
    return messages


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


def offsets_progress(target: BenchTarget) -> tuple[int, int]:
    """(partitions claimed, sum of stored next offsets) of the storage consumer."""
    with psycopg.connect(target.postgres.conninfo()) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets"
        ).fetchone()
    return row[0], row[1]


def drain_rate(target: BenchTarget, total: int, timeout: float) -> float:
    """Bars per second from the partitions' assignment (their claim rows) to the drain."""
    deadline = time.monotonic() + timeout
    assigned_at, done_before = None, 0
    while time.monotonic() < deadline:
        claimed, done = offsets_progress(target)
        now = time.monotonic()
        if assigned_at is None and claimed > 0:
            assigned_at, done_before = now, done
        if done >= total:
            assert assigned_at is not None
            return (total - done_before) / max(now - assigned_at, 1e-9)
        time.sleep(0.01)
    raise RuntimeError(f"drain did not finish within {timeout}s")


def steady_load(target: BenchTarget, rate: int, seconds: float, symbols: int) -> int:
    """Publish `rate` bars/s in 10 ms ticks for `seconds`; returns how many were sent."""
    producer = make_producer(target.kafka, "bench-steady")
    messages = synthetic_bars(
        symbols, max(1, int(rate * seconds) // symbols + 1), datetime(2025, 1, 6, tzinfo=UTC)
    )
    per_tick = max(1, rate // 100)
    sent = 0
    started = time.monotonic()
    for tick in range(int(seconds * 100)):
        produce_all(producer, target.topics.market_bars, messages[sent : sent + per_tick])
        sent += per_tick
        pause = started + (tick + 1) / 100 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    producer.flush(30)
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for make test")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bars", type=int, default=200_000, help="bars pre-filled in the topic")
    parser.add_argument("--existing-rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=2000, help="steady bars/s for latency")
    parser.add_argument("--seconds", type=float, default=30.0, help="steady phase length")
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args(argv)
    if args.smoke:
        args.bars, args.existing_rows, args.seconds, args.symbols = 5_000, 10_000, 3.0, 50

    with fresh_target("ingest") as target:
        existing = prefill_table(target, args.symbols, max(1, args.existing_rows // args.symbols))
        messages = synthetic_bars(
            args.symbols, max(1, args.bars // args.symbols), datetime(2024, 1, 2, tzinfo=UTC)
        )
        producer = make_producer(target.kafka, "bench-prefill")
        produce_all(producer, target.topics.market_bars, messages)
        producer.flush(60)
        emit_settings(
            target,
            symbols=args.symbols,
            batch_size=args.batch_size,
            rows_in_table=existing,
            topic_bars=len(messages),
        )
        consumer = Service("consumer.storage", target, CONSUMER_BATCH_SIZE=str(args.batch_size))
        try:
            consumer.wait_ready()
            emit("bars_per_s", drain_rate(target, len(messages), timeout=600))
            before = consumer.metrics().get(LATENCY_METRIC, [])
            sent = steady_load(target, args.rate, args.seconds, args.symbols)
            drain_rate(target, len(messages) + sent, timeout=120)
            after = consumer.metrics()[LATENCY_METRIC]
        finally:
            consumer.stop()
        with psycopg.connect(target.postgres.conninfo()) as conn:
            stored = conn.execute("SELECT count(*) FROM price_bars").fetchone()[0]
        expected = existing + len(messages) + sent
        if stored != expected:
            raise SystemExit(f"bench.ingest: price_bars holds {stored} rows, expected {expected}")
        steady = _subtract(after, before)
        emit("steady_rate_bars_per_s", args.rate)
        emit("steady_bars", sent)
        emit("p50_latency_ms", 1000 * histogram_quantile(steady, 0.50))
        emit("p99_latency_ms", 1000 * histogram_quantile(steady, 0.99))
    return 0


def _subtract(
    after: list[tuple[dict[str, str], float]], before: list[tuple[dict[str, str], float]]
) -> list[tuple[dict[str, str], float]]:
    earlier = {labels["le"]: value for labels, value in before}
    return [(labels, value - earlier.get(labels["le"], 0.0)) for labels, value in after]


if __name__ == "__main__":
    raise SystemExit(main())
