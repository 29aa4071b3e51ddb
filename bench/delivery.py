"""Where a bench's messages went: a steady load generator that counts deliveries, each consumer
group's distance from the topic's end, and the wait for every group to reach it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import psycopg
from confluent_kafka import KafkaError, Message
from confluent_kafka.admin import AdminClient

from bench.harness import BenchTarget, DeliveryDelays, Service, load_producer, produce_paced
from pipeline.figures import StoredOffsets, Watermarks
from pipeline.lag import stored_offsets, watermarks


class Deliveries:
    """Delivery reports of one producer: where the broker put each message (key, partition,
    offset), how many failed, and the first error."""

    def __init__(self) -> None:
        self.placed: list[tuple[bytes, int, int]] = []
        self.failed = 0
        self.first_error: str | None = None

    @property
    def confirmed(self) -> int:
        return len(self.placed)

    def report(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.placed.append((message.key(), message.partition(), message.offset()))
            return
        self.failed += 1
        self.first_error = self.first_error or error.str()


def publish_steady(
    target: BenchTarget,
    messages: Sequence[tuple[bytes, bytes]],
    rate: int | None,
    *,
    measured: bool = True,
) -> Deliveries:
    """Publish `messages` at `rate` per second in 10 ms ticks (None: as fast as the producer
    takes them), straight to market.bars (the replay producer polls and cannot hold a steady
    rate). A steady `measured` load also prints its own delivery delays (DeliveryDelays)."""
    producer = load_producer(target, "bench-load")
    deliveries, delays = Deliveries(), DeliveryDelays()

    def report(error: KafkaError | None, message: Message) -> None:
        deliveries.report(error, message)
        delays(error, message)

    produce_paced(producer, target.topics.market_bars, messages, rate, report)
    if producer.flush(60):
        raise RuntimeError("bench load: messages still unconfirmed 60 s after the last one")
    if rate and measured:
        delays.emit()
    return deliveries


def below_stored(
    placed: Iterable[tuple[bytes, int, int]], group: str, topic: str, stored: StoredOffsets
) -> Counter[str]:
    """Per key, how many of its messages lie below `group`'s stored offset of their partition:
    the messages the group has committed as consumed (a claimed partition's offset is NULL
    until its first batch commits)."""
    return Counter(
        key.decode()
        for key, partition, offset in placed
        if offset < (stored.get((group, topic, partition)) or 0)
    )


def behind(group: str, topic: str, stored: StoredOffsets, marks: Watermarks) -> int:
    """Messages of `topic` that `group` has not committed: Σ high watermark − stored offset
    (the log start where the group stored none)."""
    total = 0
    for (t, partition), (low, high) in marks.items():
        if t == topic:
            at = stored.get((group, topic, partition))
            total += max(0, high - (low if at is None else max(at, low)))
    return total


def beyond(group: str, topic: str, stored: StoredOffsets, marks: Watermarks) -> int:
    """Offsets `group` stored past the topic's end (never possible without a bug)."""
    return sum(
        max(0, at - marks[(t, partition)][1])
        for (g, t, partition), at in stored.items()
        if g == group and t == topic and at is not None and (t, partition) in marks
    )


def offsets_and_marks(
    target: BenchTarget, admin: AdminClient, conn: psycopg.Connection
) -> tuple[StoredOffsets, Watermarks]:
    """Every group's stored offsets and market.bars' watermarks, read now."""
    marks = watermarks(admin, [target.topics.market_bars], target.kafka.connect_timeout_s)
    return stored_offsets(conn), marks


def wait_drained(target: BenchTarget, groups: Sequence[str], timeout: float) -> Mapping[str, float]:
    """Wait until every group has committed market.bars to its end; returns, per group, the
    seconds from this call until it got there. Fails at once when a service has exited."""
    started = time.monotonic()
    done: dict[str, float] = {}
    admin = AdminClient(target.kafka.client_config())
    with psycopg.connect(target.postgres.conninfo(), autocommit=True) as conn:
        while time.monotonic() - started < timeout:
            for service in Service.running:
                service.check_alive()
            stored, marks = offsets_and_marks(target, admin, conn)
            for group in groups:
                topic = target.topics.market_bars
                if group not in done and behind(group, topic, stored, marks) == 0:
                    done[group] = time.monotonic() - started
            if len(done) == len(groups):
                return done
            time.sleep(0.1)
    missing = [g for g in groups if g not in done]
    raise RuntimeError(f"groups {missing} did not reach the end of market.bars within {timeout}s")
