"""Producer-owned state beside the watermarks: delivered actions and the oldest delivered bars.

Tables of db/migrations/0009, written from Kafka delivery callbacks only (what Kafka confirmed,
never what was merely sent) and read by the producer that wrote them. A producer reads no table
the storage consumer writes: what it publishes must not depend on how far storage lags.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime

from confluent_kafka import KafkaError, Message
from psycopg_pool import ConnectionPool

from shared.schemas import CorporateAction

SELECT_ACTIONS = """
SELECT symbol, kind, ts, ratio FROM producer_actions
WHERE producer = %s AND symbol = ANY(%s)
"""
INSERT_ACTION = """
INSERT INTO producer_actions (producer, symbol, kind, ts, ratio, amount, event_id)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (producer, symbol, kind, ts) DO NOTHING
"""
SELECT_HISTORY = """
SELECT key, first_ts FROM producer_history WHERE producer = %s
"""
# LEAST: the oldest delivered bar never moves forward, whichever writer commits last.
LOWER_HISTORY = """
INSERT INTO producer_history (producer, key, first_ts, updated_at)
VALUES (%s, %s, %s, now())
ON CONFLICT (producer, key) DO UPDATE SET
    first_ts = LEAST(producer_history.first_ts, EXCLUDED.first_ts),
    updated_at = now()
"""

ActionKey = tuple[str, str, datetime]  # symbol, kind, ts


def action_key(action: CorporateAction) -> ActionKey:
    return (action.symbol, action.kind, action.ts.astimezone(UTC))


class KnownActions:
    """The actions one producer delivered, per symbol (loaded once, grown by deliveries)."""

    def __init__(self) -> None:
        self.delivered: set[ActionKey] = set()
        self.splits: dict[str, dict[date, float]] = {}

    def add(self, symbol: str, kind: str, ts: datetime, ratio: float | None) -> None:
        ts = ts.astimezone(UTC)
        self.delivered.add((symbol, kind, ts))
        if kind == "split" and ratio is not None and ratio > 0:
            self.splits.setdefault(symbol, {})[ts.date()] = ratio


class Deliveries:
    """Delivery confirmations of actions and bars, collected on the producer's report thread
    and taken by the poll that stores them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._actions: list[CorporateAction] = []
        self._first: dict[str, datetime] = {}

    def action(self, action: CorporateAction) -> Callable[[KafkaError | None, Message], None]:
        """The delivery callback of one action message."""

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                with self._lock:
                    self._actions.append(action)

        return on_delivery

    def bar(self, key: str, ts: datetime) -> None:
        """One bar of series `key` stamped `ts` was delivered (call from its callback)."""
        with self._lock:
            held = self._first.get(key)
            self._first[key] = ts if held is None or ts < held else held

    def take(self) -> tuple[list[CorporateAction], dict[str, datetime]]:
        """What was confirmed since the last take."""
        with self._lock:
            actions, first = self._actions, self._first
            self._actions, self._first = [], {}
        return actions, first


class ProducerStore:
    """Reads and writes one producer's rows of producer_actions and producer_history."""

    def __init__(self, pool: ConnectionPool, producer: str) -> None:
        self._pool = pool
        self._producer = producer

    def load_actions(self, symbols: Iterable[str]) -> KnownActions:
        known = KnownActions()
        with self._pool.connection() as conn:
            rows = conn.execute(SELECT_ACTIONS, (self._producer, list(symbols))).fetchall()
        for symbol, kind, ts, ratio in rows:
            known.add(symbol, kind, ts, ratio)
        return known

    def load_history(self) -> dict[str, datetime]:
        """The oldest delivered bar of each series key."""
        with self._pool.connection() as conn:
            rows = conn.execute(SELECT_HISTORY, (self._producer,)).fetchall()
        return {key: first for key, first in rows}

    def save(self, actions: list[CorporateAction], first: dict[str, datetime]) -> None:
        """Record delivered actions and lower the oldest delivered bars, in one transaction."""
        if not actions and not first:
            return
        with self._pool.connection() as conn, conn.cursor() as cur:
            if actions:
                cur.executemany(
                    INSERT_ACTION,
                    [
                        (self._producer, a.symbol, a.kind, a.ts, a.ratio, a.amount, a.event_id)
                        for a in actions
                    ],
                )
            if first:
                cur.executemany(
                    LOWER_HISTORY,
                    [(self._producer, key, ts) for key, ts in sorted(first.items())],
                )


class OwnState:
    """One producer process's view of its own state: loaded once, grown by confirmed
    deliveries, stored after each poll (what Postgres did not take is kept for the next)."""

    def __init__(self, store: ProducerStore) -> None:
        self.store = store
        self.known = KnownActions()
        self.history: dict[str, datetime] = {}
        self.deliveries = Deliveries()
        self.loaded = False
        self._unsaved: tuple[list[CorporateAction], dict[str, datetime]] = ([], {})

    def load(self, symbols: Iterable[str]) -> None:
        """Read the tables once per process (raises psycopg.Error: retried next poll)."""
        if not self.loaded:
            self.known = self.store.load_actions(symbols)
            self.history = self.store.load_history()
            self.loaded = True

    def save(self) -> None:
        """Take the confirmed deliveries into memory and store them (raises psycopg.Error, and
        keeps them for the next call, when Postgres does not answer)."""
        actions, first = self.deliveries.take()
        held_actions, held_first = self._unsaved
        actions = held_actions + actions
        for key, ts in held_first.items():
            first[key] = min(ts, first.get(key, ts))
        for action in actions:
            self.known.add(action.symbol, action.kind, action.ts, action.ratio)
        for key, ts in first.items():
            self.history[key] = min(ts, self.history.get(key, ts))
        self._unsaved = (actions, first)
        self.store.save(actions, first)
        self._unsaved = ([], {})
