"""Consumer lag's two sides: offsets stored in PostgreSQL and high watermarks from the broker."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from confluent_kafka import IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from pipeline.figures import StoredOffsets, Watermarks

STORED_OFFSETS = "SELECT consumer_group, topic, kafka_partition, next_offset FROM consumer_offsets"


def stored_offsets(conn: psycopg.Connection) -> StoredOffsets:
    """Every group's stored next offset per partition (the truth the consumers resume from)."""
    rows = conn.execute(STORED_OFFSETS).fetchall()
    return {(group, topic, partition): offset for group, topic, partition, offset in rows}


def watermarks(admin: AdminClient, topics: Iterable[str], timeout_s: float) -> Watermarks:
    """(log start, high watermark) of every partition of `topics` that exists on the broker.

    read_committed, like the consumers: the high watermark is what they can reach.
    """
    wanted = set(topics)
    if not wanted:
        return {}
    metadata = admin.list_topics(timeout=timeout_s)
    partitions = [
        TopicPartition(name, number)
        for name, topic in metadata.topics.items()
        if name in wanted and topic.error is None
        for number in topic.partitions
    ]
    if not partitions:
        return {}
    highs = _list(admin, partitions, OffsetSpec.latest(), timeout_s)
    lows = _list(admin, partitions, OffsetSpec.earliest(), timeout_s)
    return {key: (lows.get(key, 0), high) for key, high in highs.items()}


def _list(
    admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec, timeout_s: float
) -> dict[tuple[str, int], int]:
    futures = admin.list_offsets(
        {tp: spec for tp in partitions},
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=timeout_s,
    )
    found = {}
    for tp, future in futures.items():
        try:
            found[(tp.topic, tp.partition)] = future.result().offset
        except KafkaException:
            continue  # that partition's leader did not answer: left out this round
    return found
