"""`python -m consumer.redrive`: re-publish chosen dead letters to the topic they came from.

For after an upgrade that accepts what an older consumer rejected (a new field, a relaxed
rule): choose the dead letters (by id, service, topic, time, reason), look at the list, then
`--yes` publishes each one's key and payload, unchanged, to its original topic with the
idempotent producer, waits for every delivery, and marks the rows (`redriven_at`, and where
the copy landed). Every consumer group of that topic sees the copy: storage stores it (a bar
already stored is not stored twice), the analytics consumer treats a bar older than its
series' newest as late. Producer dead letters (API payloads that never were on a data topic)
and letters already redriven (unless `--again`) are never chosen.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from confluent_kafka import KafkaError, Message

from shared.errors import SettingsError
from shared.kafka import Topics, make_producer
from shared.service import configure_logging
from shared.settings import KafkaSettings, load_settings

PROG = "python -m consumer.redrive"
logger = logging.getLogger("consumer.redrive")
# How long the last deliveries may take before the redrive gives up (nothing marked then).
DELIVERY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Selection:
    """Which dead letters: every condition given holds."""

    ids: tuple[int, ...] = ()
    service: str | None = None
    topic: str | None = None
    since: datetime | None = None
    reason_contains: str | None = None
    again: bool = False
    limit: int = 1000

    def is_empty(self) -> bool:
        return not (self.ids or self.service or self.topic or self.since or self.reason_contains)


@dataclass(frozen=True)
class Letter:
    id: int
    service: str
    topic: str
    kafka_partition: int
    kafka_offset: int
    key: bytes | None
    payload: bytes
    reason: str


# Fixed SQL with parameters; a NULL (or empty) parameter switches its condition off.
SELECT_LETTERS = """
SELECT id, service, topic, kafka_partition, kafka_offset, key, payload, reason
FROM dead_letters
WHERE topic = ANY(%(topics)s::text[])
  AND payload IS NOT NULL
  AND (%(again)s OR redriven_at IS NULL)
  AND (cardinality(%(ids)s::bigint[]) = 0 OR id = ANY(%(ids)s::bigint[]))
  AND (%(service)s::text IS NULL OR service = %(service)s::text)
  AND (%(topic)s::text IS NULL OR topic = %(topic)s::text)
  AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s::timestamptz)
  AND (%(reason)s::text IS NULL OR strpos(reason, %(reason)s::text) > 0)
ORDER BY id
LIMIT %(limit)s
"""
MARK_REDRIVEN = """
UPDATE dead_letters
SET redriven_at = now(), redriven_partition = %s, redriven_offset = %s
WHERE id = %s
"""


def data_topics(prefix: str) -> list[str]:
    """The topics a dead letter can go back to: those the consumers read (never the producers'
    dead-letter topic, whose payloads are API responses)."""
    topics = Topics(prefix)
    return [
        topics.market_bars,
        topics.market_actions,
        topics.market_instruments,
        topics.news_articles,
        topics.macro_observations,
    ]


def choose(conn: psycopg.Connection, selection: Selection, topics: Sequence[str]) -> list[Letter]:
    rows = conn.execute(
        SELECT_LETTERS,
        {
            "topics": list(topics),
            "again": selection.again,
            "ids": list(selection.ids),
            "service": selection.service,
            "topic": selection.topic,
            "since": selection.since,
            "reason": selection.reason_contains,
            "limit": selection.limit,
        },
    ).fetchall()
    return [Letter(*row) for row in rows]


def publish(
    kafka: KafkaSettings, letters: Sequence[Letter]
) -> tuple[dict[int, tuple[int, int]], list[str]]:
    """Publish each letter's key and payload to its topic: {id: (partition, offset)} of every
    copy delivered, and what went wrong with the others."""
    producer = make_producer(kafka, "redrive")
    landed: dict[int, tuple[int, int]] = {}
    failures: list[str] = []

    def on_delivery(letter_id: int) -> Callable[[KafkaError | None, Message], None]:
        def report(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                failures.append(f"dead letter {letter_id}: {error.str()}")
            else:
                landed[letter_id] = (message.partition(), message.offset())

        return report

    for letter in letters:
        producer.produce(
            letter.topic, key=letter.key, value=letter.payload, on_delivery=on_delivery(letter.id)
        )
        producer.poll(0)
    producer.flush(DELIVERY_TIMEOUT_S)
    unsure = len(letters) - len(landed) - len(failures)
    if unsure:
        failures.append(f"{unsure} copies not confirmed within {DELIVERY_TIMEOUT_S:.0f}s")
    return landed, failures


def mark(conn: psycopg.Connection, landed: dict[int, tuple[int, int]]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(MARK_REDRIVEN, [(p, o, i) for i, (p, o) in sorted(landed.items())])


def parse_args(argv: Sequence[str] | None) -> tuple[Selection, bool]:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--id", dest="ids", type=int, action="append", default=[])
    parser.add_argument("--service", help="the service that rejected them (e.g. storage)")
    parser.add_argument("--topic", help="their original topic, as stored (prefix included)")
    parser.add_argument(
        "--since", type=datetime.fromisoformat, help="received at or after (ISO 8601, offset)"
    )
    parser.add_argument("--reason-contains", help="text the rejection reason contains")
    parser.add_argument("--again", action="store_true", help="include letters already redriven")
    parser.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    parser.add_argument("--yes", action="store_true", help="publish them (without: list only)")
    args = parser.parse_args(argv)
    if args.since is not None and args.since.tzinfo is None:
        parser.error("--since needs a UTC offset, e.g. 2024-01-02T00:00:00+00:00")
    selection = Selection(
        tuple(args.ids),
        args.service,
        args.topic,
        args.since,
        args.reason_contains,
        args.again,
        args.limit,
    )
    if selection.is_empty():
        parser.error("choose them: --id, --service, --topic, --since or --reason-contains")
    return selection, args.yes


def main(argv: Sequence[str] | None = None) -> int:
    selection, publish_them = parse_args(argv)
    configure_logging("consumer.redrive")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        letters = choose(conn, selection, data_topics(settings.kafka.topic_prefix))
        conn.commit()
        for letter in letters:
            print(
                f"{letter.id}\t{letter.service}\t{letter.topic}[{letter.kafka_partition}]"
                f"@{letter.kafka_offset}\t{letter.reason}"
            )
        if not letters:
            print(f"{PROG}: no dead letter matches", file=sys.stderr)
            return 1
        if not publish_them:
            print(f"{len(letters)} dead letter(s); run again with --yes to publish them")
            return 0
        # The copies delivered are marked even when others failed: a second run publishes
        # only the rest (one not confirmed may still land: consumers drop a duplicate).
        landed, failures = publish(settings.kafka, letters)
        mark(conn, landed)
    logger.info("%d dead letter(s) published again and marked", len(landed))
    for failure in failures:
        print(f"{PROG}: not redriven: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
