"""Producer watermarks in producer_state: advanced only from Kafka delivery callbacks."""

from __future__ import annotations

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
    """Collects delivery reports per key; callbacks run on the producer's poll/flush thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._delivered: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        self._failed: dict[str, datetime] = {}

    def callback(
        self, key: str, ts: datetime, event_id: str
    ) -> Callable[[KafkaError | None, Message], None]:
        """A delivery callback for one message of `key` stamped `ts`."""

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            with self._lock:
                if error is None:
                    self._delivered[key].append((ts, event_id))
                else:
                    self._failed[key] = min(ts, self._failed.get(key, ts))

        return on_delivery

    def failed_keys(self) -> list[str]:
        with self._lock:
            return sorted(self._failed)

    def confirmed(self) -> dict[str, Confirmed]:
        """Per key, the newest delivered ts below the oldest failed one (never past a failure)."""
        with self._lock:
            result: dict[str, Confirmed] = {}
            for key, delivered in self._delivered.items():
                limit = self._failed.get(key)
                safe = [d for d in delivered if limit is None or d[0] < limit]
                if safe:
                    ts, event_id = max(safe)
                    result[key] = Confirmed(ts, event_id)
            return result


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
