"""Decoding and writing for the storage consumer, plugged into the exactly-once loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from confluent_kafka import Message

from consumer.storage import reference_repository as reference
from consumer.storage.repository import write_bars, write_forwarded_dead_letters
from shared.kafka import Topics
from shared.loop import Effects, Handler, PartitionKey, Record
from shared.loop.direct_copy import DirectCopies
from shared.metrics import BAR_REVISIONS, ROWS_WRITTEN, UPSERT_CONFLICTS
from shared.schemas import (
    Article,
    Bar,
    CorporateAction,
    DeadLetter,
    Instrument,
    MacroObservation,
    decode,
)
from shared.validation import validate


class StorageHandler(Handler):
    """Every topic into its tables: bars first-version-wins, news, macro vintages, actions."""

    # The next batch is decoded while PostgreSQL inserts this one (shared/loop/flight.py).
    pipelined = True

    def __init__(self, topics: Topics) -> None:
        self._topics = topics
        self._direct_copies = DirectCopies()  # see write
        self._models: dict[str, type[Any]] = {
            topics.market_bars: Bar,
            topics.market_actions: CorporateAction,
            topics.market_instruments: Instrument,
            topics.news_articles: Article,
            topics.macro_observations: MacroObservation,
            topics.deadletter: DeadLetter,
        }

    @property
    def subscriptions(self) -> list[str]:
        return list(self._models)

    def decode(self, message: Message) -> Any:
        value = decode(message.value(), self._models[message.topic()])
        validate(value)
        return value

    def process(self, records: Sequence[Record], states: Mapping[PartitionKey, Any]) -> Effects:
        """Stateless: the records grouped by topic are the rows to write."""
        by_topic: dict[str, list[Record]] = {}
        for record in records:
            by_topic.setdefault(record.topic, []).append(record)
        return Effects(rows=by_topic)

    def write(self, conn: psycopg.Connection, effects: Effects) -> None:
        by_topic: dict[str, list[Record]] = effects.rows
        topics = self._topics
        if bars := by_topic.get(topics.market_bars):
            # First, so a batch written again (a direct COPY met a stored key) redoes no more.
            with self._direct_copies.attempt("price_bars") as direct:
                result = write_bars(conn, bars, direct=direct)
            # Fewer inserted than sent: a key was stored already or twice in the batch (a
            # replay, a backfill overlapping stored bars), which a direct COPY would not survive.
            self._direct_copies.written(met_stored=result.inserted < len(bars))
            # Counted before COMMIT: a rolled-back batch is counted again when redone, which
            # over-reports rows written but never hides a conflict.
            ROWS_WRITTEN.labels("price_bars").inc(result.inserted)
            BAR_REVISIONS.inc(result.revisions)
            UPSERT_CONFLICTS.labels("price_bars").inc(result.conflicts)
        # Actions before anything reads price_bars_adjusted in the same batch's transaction.
        if actions := by_topic.get(topics.market_actions):
            ROWS_WRITTEN.labels("corporate_actions").inc(reference.write_actions(conn, actions))
        if snapshots := by_topic.get(topics.market_instruments):
            ROWS_WRITTEN.labels("instruments").inc(reference.write_instruments(conn, snapshots))
        if articles := by_topic.get(topics.news_articles):
            ROWS_WRITTEN.labels("news_articles").inc(reference.write_articles(conn, articles))
        if vintages := by_topic.get(topics.macro_observations):
            ROWS_WRITTEN.labels("macro_observations").inc(reference.write_macro(conn, vintages))
        if letters := by_topic.get(topics.deadletter):
            ROWS_WRITTEN.labels("dead_letters").inc(write_forwarded_dead_letters(conn, letters))
