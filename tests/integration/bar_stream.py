"""Publish test bars to the real broker and read what Postgres holds of them."""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from shared.kafka import make_producer
from shared.schemas import Bar, decode, encode, event_id
from shared.settings import KafkaSettings, PostgresSettings

FETCHED_AT = datetime(2024, 10, 3, tzinfo=UTC)


def minute_bar(
    symbol: str,
    ts: datetime,
    prices: tuple[float, float, float, float],
    volume: int,
    fetched_at: datetime = FETCHED_AT,
) -> Bar:
    """A synthetic one-minute test bar; `prices` are (open, high, low, close)."""
    open_, high, low, close = prices
    return Bar(
        event_id=event_id("test", symbol, "1m", ts),
        source="test",
        symbol=symbol,
        interval="1m",
        ts=ts,
        open=open_,
        high=high,
        low=low,
        close=close,
        adj_close=None,
        volume=volume,
        split_basis=1.0,
        fetched_at=fetched_at,
    )


def minute_bars(symbols: Iterable[str], count: int, start: datetime | None = None) -> list[Bar]:
    """`count` one-minute bars per symbol, distinct valid prices (synthetic, not market data)."""
    start = start or datetime(2024, 10, 2, 13, 30, tzinfo=UTC)
    bars = []
    for s_index, symbol in enumerate(symbols):
        for i in range(count):
            ts = start + timedelta(minutes=i)
            base = 100.0 + s_index * 10 + i * 0.01
            bars.append(
                minute_bar(symbol, ts, (base, base + 0.5, base - 0.5, base + 0.25), 1000 + i)
            )
    return bars


def random_walk_bars(
    symbols: Iterable[str], count: int, seed: int, start: datetime | None = None
) -> list[Bar]:
    """`count` one-minute bars per symbol from a seeded random walk (about 1% per bar), in time
    order across symbols (how a live producer publishes them). Synthetic, not market data."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test prices, not secrets
    start = start or datetime(2024, 10, 2, 13, 30, tzinfo=UTC)
    symbols = list(symbols)
    fetched_at = start + timedelta(minutes=count)  # all bars closed when fetched
    closes = {symbol: rng.uniform(20.0, 500.0) for symbol in symbols}
    bars = []
    for i in range(count):
        ts = start + timedelta(minutes=i)
        for symbol in symbols:
            open_ = closes[symbol]
            close = open_ * math.exp(rng.gauss(0.0, 0.01))
            closes[symbol] = close
            high = max(open_, close) * (1 + rng.uniform(0.0, 0.004))
            low = min(open_, close) * (1 - rng.uniform(0.0, 0.004))
            volume = rng.randint(100, 100_000)
            bars.append(minute_bar(symbol, ts, (open_, high, low, close), volume, fetched_at))
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


class PacedPublisher(threading.Thread):
    """Publishes `bars` in the background, `step` at a time with `pause_s` between steps (a
    live feed, so consumers can be killed while bars are still coming in); `hurry()` publishes
    the rest without pauses."""

    def __init__(
        self, settings: KafkaSettings, topic: str, bars: list[Bar], step: int, pause_s: float
    ) -> None:
        super().__init__(name="paced-publisher", daemon=True)
        self._settings = settings
        self._topic = topic
        self._bars = bars
        self._step = step
        self._pause_s = pause_s
        self._cancelled = False
        self._wake = threading.Event()
        self.published = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = make_producer(self._settings, "tests")
            for start in range(0, len(self._bars), self._step):
                if self._cancelled:
                    return
                for bar in self._bars[start : start + self._step]:
                    producer.produce(self._topic, key=bar.symbol.encode(), value=encode(bar))
                if producer.flush(30) != 0:
                    raise AssertionError("messages left undelivered")
                self.published = min(start + self._step, len(self._bars))
                self._wake.wait(self._pause_s)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread by finish()
            self.error = exc

    def finish(self, timeout: float = 60) -> None:
        """Wait until every bar is published; raise what went wrong in the thread."""
        self.join(timeout)
        if self.error is not None:
            raise AssertionError("publishing failed") from self.error
        assert not self.is_alive(), f"publishing did not finish within {timeout:g}s"
        assert self.published == len(self._bars), f"{self.published} of {len(self._bars)} bars"

    def hurry(self) -> None:
        self._pause_s = 0.0
        self._wake.set()

    def cancel(self) -> None:
        self._cancelled = True
        self.hurry()
        self.join(30)


# What a partition answers while a leader moves or the broker applies a topic's creation.
PASSING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TIMED_OUT,
}


def end_offsets(settings: KafkaSettings, topic: str) -> dict[int, int]:
    """Each partition's high watermark. A retriable error (a leader moving, a topic the broker
    has not applied yet) is retried for up to 10 s, then raised."""
    consumer = Consumer({**settings.client_config(), "group.id": "tests-offsets"})
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                metadata = consumer.list_topics(topic, timeout=10).topics[topic]
                return {
                    p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in metadata.partitions
                }
            except KafkaException as exc:
                if exc.args[0].code() not in PASSING or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
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


def topic_bars(kafka: KafkaSettings, topic: str) -> list[Bar]:
    """Every bar on `topic`, in each partition's order."""
    ends = end_offsets(kafka, topic)
    consumer = Consumer({**kafka.client_config(), "group.id": f"read-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    bars: list[Bar] = []
    try:
        while len(bars) < sum(ends.values()):
            message = consumer.poll(5)
            assert message is not None, "the topic ended early"
            bars.append(decode(message.value(), Bar))
    finally:
        consumer.close()
    return bars
