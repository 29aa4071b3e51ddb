"""Producer watermarks in producer_state: advanced only from Kafka delivery callbacks."""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import KafkaError, Message
from psycopg_pool import ConnectionPool

SELECT_WATERMARKS = """
SELECT key, watermark FROM producer_state WHERE producer = %s
"""
# GREATEST: a watermark never moves back, whichever writer commits last.
ADVANCE_WATERMARK = """
INSERT INTO producer_state (producer, key, watermark, last_event_id, updated_at)
VALUES (%s, %s, %s, %s, now())
ON CONFLICT (producer, key) DO UPDATE SET
    watermark = GREATEST(producer_state.watermark, EXCLUDED.watermark),
    last_event_id = CASE WHEN EXCLUDED.watermark >= producer_state.watermark
                         THEN EXCLUDED.last_event_id ELSE producer_state.last_event_id END,
    updated_at = now()
"""


@dataclass(frozen=True)
class Confirmed:
    """The newest message of one key whose delivery (and every earlier one's) was confirmed."""

    ts: datetime
    event_id: str


class DeliveryTracker:
    """Collects delivery reports per key; callbacks run on the producer's poll/flush thread.

    A message is in flight from `callback()` until its report runs, which may be after the
    flush that was meant to wait for it (a flush times out while the broker is away): a tracker
    that lives as long as its producer gets those late reports, and an in-flight message bounds
    the watermark exactly like a failed one, so the watermark never passes a message whose
    delivery is not confirmed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._delivered: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        self._failed: dict[str, datetime] = {}
        self._in_flight: dict[str, dict[int, datetime]] = defaultdict(dict)
        self._tokens = itertools.count()

    def callback(
        self, key: str, ts: datetime, event_id: str
    ) -> Callable[[KafkaError | None, Message], None]:
        """A delivery callback for one message of `key` stamped `ts` (in flight from now on)."""
        token = next(self._tokens)
        with self._lock:
            self._in_flight[key][token] = ts

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            with self._lock:
                self._in_flight[key].pop(token, None)
                if error is None:
                    self._delivered[key].append((ts, event_id))
                else:
                    self._failed[key] = min(ts, self._failed.get(key, ts))

        return on_delivery

    def failed_keys(self) -> list[str]:
        with self._lock:
            return sorted(self._failed)

    def in_flight(self) -> int:
        """Messages whose delivery report has not run yet."""
        with self._lock:
            return sum(len(tokens) for tokens in self._in_flight.values())

    def clear_failures(self, key: str) -> None:
        """`key` is being published again: its failed messages are re-sent (in flight again) or
        no longer offered by the API, so they stop bounding its watermark."""
        with self._lock:
            self._failed.pop(key, None)

    def confirmed(self) -> dict[str, Confirmed]:
        """Per key, the newest delivered ts below the oldest failed or in-flight one."""
        with self._lock:
            result: dict[str, Confirmed] = {}
            for key, delivered in self._delivered.items():
                limit = self._limit(key)
                safe = [d for d in delivered if limit is None or d[0] < limit]
                if safe:
                    ts, event_id = max(safe)
                    result[key] = Confirmed(ts, event_id)
            return result

    def forget(self, confirmed: dict[str, Confirmed]) -> None:
        """Drop the reports `confirmed` accounts for: a long-lived tracker stays small."""
        with self._lock:
            for key, mark in confirmed.items():
                kept = [d for d in self._delivered.get(key, []) if d[0] > mark.ts]
                if kept:
                    self._delivered[key] = kept
                else:
                    self._delivered.pop(key, None)

    def _limit(self, key: str) -> datetime | None:
        bounds = list(self._in_flight.get(key, {}).values())
        if key in self._failed:
            bounds.append(self._failed[key])
        return min(bounds) if bounds else None


class WatermarkStore:
    """Reads and advances one producer's rows of producer_state."""

    def __init__(self, pool: ConnectionPool, producer: str) -> None:
        self._pool = pool
        self._producer = producer

    def load(self) -> dict[str, datetime]:
        with self._pool.connection() as conn:
            rows = conn.execute(SELECT_WATERMARKS, (self._producer,)).fetchall()
        return {key: watermark for key, watermark in rows}

    def advance(self, confirmed: dict[str, Confirmed]) -> None:
        """Upsert the confirmed watermarks in one transaction."""
        if not confirmed:
            return
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                ADVANCE_WATERMARK,
                [(self._producer, key, c.ts, c.event_id) for key, c in sorted(confirmed.items())],
            )
