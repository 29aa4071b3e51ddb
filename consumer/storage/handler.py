"""Decoding and writing for the storage consumer, plugged into the exactly-once loop."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from confluent_kafka import Message

from consumer.storage.repository import write_bars, write_forwarded_dead_letters
from shared.consumer_handler import Handler, Record
from shared.kafka import Topics
from shared.metrics import BAR_REVISIONS, ROWS_WRITTEN, UPSERT_CONFLICTS
from shared.schemas import Bar, DeadLetter, decode
from shared.validation import validate_bar


class StorageHandler(Handler):
    """Bars into price_bars (first version wins), producers' dead letters into dead_letters."""

    def __init__(self, topics: Topics) -> None:
        self._topics = topics

    @property
    def subscriptions(self) -> list[str]:
        return [self._topics.market_bars, self._topics.deadletter]

    def decode(self, message: Message) -> Bar | DeadLetter:
        if message.topic() == self._topics.deadletter:
            return decode(message.value(), DeadLetter)
        bar = decode(message.value(), Bar)
        validate_bar(bar)
        return bar

    def write(self, conn: psycopg.Connection, records: Sequence[Record]) -> None:
        bars = [r for r in records if r.topic == self._topics.market_bars]
        letters = [r for r in records if r.topic == self._topics.deadletter]
        if bars:
            result = write_bars(conn, bars)
            # Counted before COMMIT: a rolled-back batch is counted again when redone, which
            # over-reports rows written but never hides a conflict.
            ROWS_WRITTEN.labels("price_bars").inc(result.inserted)
            BAR_REVISIONS.inc(result.revisions)
            UPSERT_CONFLICTS.labels("price_bars").inc(result.conflicts)
        if letters:
            ROWS_WRITTEN.labels("dead_letters").inc(write_forwarded_dead_letters(conn, letters))
