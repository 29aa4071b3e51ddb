"""The consumer loop's SQL: offsets stored with compare-and-set, and dead letters."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

SELECT_OFFSETS = """
SELECT kafka_partition, next_offset FROM consumer_offsets
WHERE consumer_group = %s AND topic = %s AND kafka_partition = ANY(%s)
"""
# Called when Kafka assigns partitions: the new owner's token replaces the old one, so a member
# that stalled past max.poll.interval.ms can no longer commit what it was still writing.
CLAIM_PARTITIONS = """
INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset, owner)
SELECT %s, w.topic, w.kafka_partition, NULL, %s
FROM unnest(%s::text[], %s::int[]) AS w(topic, kafka_partition)
ON CONFLICT (consumer_group, topic, kafka_partition)
DO UPDATE SET owner = EXCLUDED.owner, updated_at = now()
RETURNING topic, kafka_partition, next_offset
"""
# Compare-and-set: a row only moves while we own it and from the offset this batch started
# from. Fewer rows than partitions: another member owns one now, so the batch is rolled back.
ADVANCE_OFFSETS = """
UPDATE consumer_offsets o
SET next_offset = w.next_offset, updated_at = now()
FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::bigint[])
     AS w(topic, kafka_partition, expected, next_offset)
WHERE o.consumer_group = %s AND o.owner = %s
  AND o.topic = w.topic AND o.kafka_partition = w.kafka_partition
  AND o.next_offset IS NOT DISTINCT FROM w.expected
"""
INSERT_DEAD_LETTERS = """
INSERT INTO dead_letters (service, topic, kafka_partition, kafka_offset, key, payload, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (service, topic, kafka_partition, kafka_offset) DO NOTHING
"""

DeadLetterRow = tuple[str, str, int, int, bytes | None, bytes | None, str]


class FencedError(Exception):
    """The offsets moved under us: another consumer owns a partition of this batch."""


def claim_partitions(
    conn: psycopg.Connection, group: str, owner: str, partitions: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], int | None]:
    """Make `owner` the owner of `partitions`; return each one's stored next offset."""
    rows = conn.execute(
        CLAIM_PARTITIONS,
        (group, owner, [tp[0] for tp in partitions], [tp[1] for tp in partitions]),
    ).fetchall()
    return {(topic, partition): offset for topic, partition, offset in rows}


def read_offsets(
    conn: psycopg.Connection, group: str, partitions: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], int | None]:
    """The stored next offset of each (topic, partition) that has a row."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    stored: dict[tuple[str, int], int | None] = {}
    for topic, numbers in by_topic.items():
        for partition, offset in conn.execute(SELECT_OFFSETS, (group, topic, numbers)):
            stored[(topic, partition)] = offset
    return stored


def advance_offsets(
    conn: psycopg.Connection,
    group: str,
    owner: str,
    expected: dict[tuple[str, int], int | None],
    ends: dict[tuple[str, int], int],
) -> None:
    """Move each partition from `expected` to `ends` while `owner` owns it, else FencedError."""
    with conn.cursor() as cur:
        cur.execute(
            ADVANCE_OFFSETS,
            (
                [tp[0] for tp in ends],
                [tp[1] for tp in ends],
                [expected[tp] for tp in ends],
                list(ends.values()),
                group,
                owner,
            ),
        )
        if cur.rowcount != len(ends):
            raise FencedError(
                f"{len(ends) - cur.rowcount} partition(s) now owned by another member "
                "or moved past this batch"
            )


def insert_dead_letters(conn: psycopg.Connection, rows: Sequence[DeadLetterRow]) -> None:
    """(service, topic, partition, offset, key, payload, reason) rows; a redelivery is a no-op."""
    with conn.cursor() as cur:
        cur.executemany(INSERT_DEAD_LETTERS, rows)
