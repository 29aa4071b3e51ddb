"""Publish test bars to the real broker and read what Postgres holds of them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import psycopg
from confluent_kafka import Consumer, TopicPartition

from shared.kafka import make_producer
from shared.schemas import Bar, encode, event_id
from shared.settings import KafkaSettings, PostgresSettings

FETCHED_AT = datetime(2024, 10, 3, tzinfo=UTC)


def minute_bars(symbols: Iterable[str], count: int, start: datetime | None = None) -> list[Bar]:
    """`count` one-minute bars per symbol, distinct valid prices (synthetic, not market data)."""
    start = start or datetime(2024, 10, 2, 13, 30, tzinfo=UTC)
    bars = []
    for s_index, symbol in enumerate(symbols):
        for i in range(count):
            ts = start + timedelta(minutes=i)
            base = 100.0 + s_index * 10 + i * 0.01
            bars.append(
                Bar(
                    event_id=event_id("test", symbol, "1m", ts),
                    source="test",
                    symbol=symbol,
                    interval="1m",
                    ts=ts,
                    open=base,
                    high=base + 0.5,
                    low=base - 0.5,
                    close=base + 0.25,
                    adj_close=None,
                    volume=1000 + i,
                    split_basis=1.0,
                    fetched_at=FETCHED_AT,
                )
            )
    return bars


def publish(settings: KafkaSettings, topic: str, messages: Iterable[tuple[bytes, bytes]]) -> int:
    producer = make_producer(settings, "tests")
    count = 0
    for key, value in messages:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
        count += 1
    assert producer.flush(30) == 0, "messages left undelivered"
    return count


def publish_bars(settings: KafkaSettings, topic: str, bars: Iterable[Bar]) -> int:
    return publish(settings, topic, ((bar.symbol.encode(), encode(bar)) for bar in bars))


def end_offsets(settings: KafkaSettings, topic: str) -> dict[int, int]:
    consumer = Consumer({**settings.client_config(), "group.id": "tests-offsets"})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.partitions
        }
    finally:
        consumer.close()


def stored_offsets(pg: PostgresSettings, group: str, topic: str) -> dict[int, int]:
    with psycopg.connect(pg.conninfo()) as conn:
        rows = conn.execute(
            "SELECT kafka_partition, next_offset FROM consumer_offsets "
            "WHERE consumer_group = %s AND topic = %s",
            (group, topic),
        ).fetchall()
    return {partition: offset for partition, offset in rows if offset is not None}


def drained(pg: PostgresSettings, kafka: KafkaSettings, group: str, topic: str) -> bool:
    """True when every non-empty partition's stored offset equals its end offset."""
    ends = {p: end for p, end in end_offsets(kafka, topic).items() if end > 0}
    return stored_offsets(pg, group, topic) == ends


def stored_bars(pg: PostgresSettings) -> list[tuple]:
    with psycopg.connect(pg.conninfo()) as conn:
        return conn.execute(
            "SELECT symbol, interval, ts, open, high, low, close, adj_close, volume, split_basis,"
            " source, event_id FROM price_bars ORDER BY symbol, interval, ts"
        ).fetchall()


def as_rows(bars: Iterable[Bar]) -> list[tuple]:
    rows = [
        (
            b.symbol,
            b.interval,
            b.ts,
            b.open,
            b.high,
            b.low,
            b.close,
            b.adj_close,
            b.volume,
            b.split_basis,
            b.source,
            b.event_id,
        )
        for b in bars
    ]
    return sorted(rows, key=lambda row: (row[0], row[1], row[2]))
