"""The loop's SQL: claims, offsets stored with compare-and-set, and dead letters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import psycopg

from shared.errors import FencedError
from shared.loop.contract import PartitionKey, Rejected

# Called when this member takes partitions: the new owner's token replaces the old one, so a
# member that stalled past max.poll.interval.ms can no longer commit what it was still writing.
CLAIM_PARTITIONS = """
INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset, owner)
SELECT %s, w.topic, w.kafka_partition, NULL, %s
FROM unnest(%s::text[], %s::int[]) AS w(topic, kafka_partition)
ON CONFLICT (consumer_group, topic, kafka_partition)
DO UPDATE SET owner = EXCLUDED.owner, updated_at = now()
RETURNING topic, kafka_partition, next_offset
"""
# Compare-and-set. A row moves only while we own it, from the offset this member last stored,
# and only when the batch starts exactly there. Our topics are neither compacted nor written by
# transactional producers, so a partition's offsets are dense: a batch that continues the stored
# offset starts AT it, and any other first offset is a gap (lost messages) or an overlap
# (doubles). With no stored offset yet (a new group) the batch may start anywhere at or above
# the log start, which the loop checks against the broker before it gets here.
# Fewer rows than partitions: fenced, and the whole transaction is rolled back.
ADVANCE_OFFSETS = """
UPDATE consumer_offsets o
SET next_offset = w.next_offset, updated_at = now()
FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::bigint[], %s::bigint[])
     AS w(topic, kafka_partition, expected, first_offset, next_offset)
WHERE o.consumer_group = %s AND o.owner = %s
  AND o.topic = w.topic AND o.kafka_partition = w.kafka_partition
  AND o.next_offset IS NOT DISTINCT FROM w.expected
  AND (w.expected IS NULL OR w.first_offset = w.expected)
"""
# A write that moves no offset (a sweep) still needs the rows locked and owned by us, at the
# offset we know: a member that lost a partition must not overwrite its new owner's state.
LOCK_OWNED = """
SELECT count(*)
FROM consumer_offsets o
JOIN unnest(%s::text[], %s::int[], %s::bigint[]) AS w(topic, kafka_partition, expected)
  ON o.topic = w.topic AND o.kafka_partition = w.kafka_partition
WHERE o.consumer_group = %s AND o.owner = %s
  AND o.next_offset IS NOT DISTINCT FROM w.expected
"""
LOCK_ROWS = """
SELECT 1 FROM consumer_offsets
WHERE consumer_group = %s AND (topic, kafka_partition) IN
      (SELECT * FROM unnest(%s::text[], %s::int[]))
ORDER BY topic, kafka_partition
FOR UPDATE
"""
INSERT_DEAD_LETTERS = """
INSERT INTO dead_letters (service, topic, kafka_partition, kafka_offset, key, payload, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (service, topic, kafka_partition, kafka_offset) DO NOTHING
"""

DeadLetterRow = tuple[str, str, int, int, bytes | None, bytes | None, str]


def claim_partitions(
    conn: psycopg.Connection, group: str, owner: str, partitions: Sequence[PartitionKey]
) -> dict[PartitionKey, int | None]:
    """Make `owner` the owner of `partitions`; return each one's stored next offset."""
    rows = conn.execute(
        CLAIM_PARTITIONS,
        (group, owner, [tp[0] for tp in partitions], [tp[1] for tp in partitions]),
    ).fetchall()
    return {(topic, partition): offset for topic, partition, offset in rows}


def advance_offsets(
    conn: psycopg.Connection,
    group: str,
    owner: str,
    expected: Mapping[PartitionKey, int | None],
    firsts: Mapping[PartitionKey, int],
    ends: Mapping[PartitionKey, int],
) -> None:
    """Move each partition from `expected` to `ends` (the batch starting at `firsts`) while
    `owner` owns it; FencedError otherwise."""
    keys = list(ends)
    with conn.cursor() as cur:
        cur.execute(
            ADVANCE_OFFSETS,
            (
                [tp[0] for tp in keys],
                [tp[1] for tp in keys],
                [expected[tp] for tp in keys],
                [firsts[tp] for tp in keys],
                [ends[tp] for tp in keys],
                group,
                owner,
            ),
        )
        if cur.rowcount != len(keys):
            raise FencedError(
                f"{len(keys) - cur.rowcount} partition(s) now owned by another member, or the "
                "batch does not start at the stored offset"
            )


def hold_owned(
    conn: psycopg.Connection,
    group: str,
    owner: str,
    expected: Mapping[PartitionKey, int | None],
) -> None:
    """Lock the offset rows of `expected`'s partitions until COMMIT and check that `owner` owns
    each at the offset given; FencedError otherwise (the transaction is rolled back)."""
    keys = list(expected)
    topics, numbers = [tp[0] for tp in keys], [tp[1] for tp in keys]
    with conn.cursor() as cur:
        cur.execute(LOCK_ROWS, (group, topics, numbers))
        cur.execute(LOCK_OWNED, (topics, numbers, [expected[tp] for tp in keys], group, owner))
        row = cur.fetchone()
        owned = row[0] if row else 0
    if owned != len(keys):
        raise FencedError(f"{len(keys) - owned} partition(s) now owned by another member")


def dead_letter_rows(service: str, rejected: Sequence[Rejected]) -> list[DeadLetterRow]:
    return [(service, r.topic, r.partition, r.offset, r.key, r.payload, r.reason) for r in rejected]


def insert_dead_letters(conn: psycopg.Connection, rows: Sequence[DeadLetterRow]) -> None:
    """(service, topic, partition, offset, key, payload, reason) rows; a redelivery is a no-op."""
    with conn.cursor() as cur:
        cur.executemany(INSERT_DEAD_LETTERS, rows)
