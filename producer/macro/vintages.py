"""producer.macro's own record of the vintages it delivered (producer_vintages, migration 0010).

What the producer publishes is compared with this record, never with macro_observations (the
storage consumer's table): a poll while storage lags, a crash after delivery or a redrive must not
make it publish again, nor make it skip. Rows are written only from delivery callbacks.
"""

from __future__ import annotations

import threading
from datetime import date

from confluent_kafka import KafkaError, Message
from psycopg_pool import ConnectionPool

from producer.publisher import DeliveryCallback
from shared.schemas import MacroObservation

SELECT_VINTAGES = """
SELECT obs_date, value FROM producer_vintages WHERE producer = %s AND series_id = %s
"""
# The newest vintage per date wins, whichever delivery is stored last.
UPSERT_VINTAGE = """
INSERT INTO producer_vintages (producer, series_id, obs_date, realtime_start, value, event_id)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (producer, series_id, obs_date) DO UPDATE SET
    realtime_start = EXCLUDED.realtime_start, value = EXCLUDED.value,
    event_id = EXCLUDED.event_id, delivered_at = now()
WHERE producer_vintages.realtime_start <= EXCLUDED.realtime_start
"""


class VintageRecord:
    """Per series and date, the value of the newest vintage whose delivery Kafka confirmed.

    As long-lived as the publisher: a report that runs after a poll's flush gave up on it is
    recorded by the next `store()`. Delivered vintages not stored yet (Postgres away) stay in
    memory and count as published meanwhile.
    """

    def __init__(self, pool: ConnectionPool, producer: str) -> None:
        self._pool = pool
        self._producer = producer
        self._lock = threading.Lock()
        self._delivered: dict[tuple[str, date], MacroObservation] = {}

    def load(self, series_id: str) -> dict[date, float | None]:
        """The published value per observation date of `series_id`."""
        with self._pool.connection() as conn:
            rows = conn.execute(SELECT_VINTAGES, (self._producer, series_id)).fetchall()
        known: dict[date, float | None] = dict(rows)
        with self._lock:
            for (series, obs_date), observation in self._delivered.items():
                if series == series_id:
                    known[obs_date] = observation.value
        return known

    def callback(self, observation: MacroObservation) -> DeliveryCallback:
        """The delivery callback of one observation message."""

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                return  # not recorded: the next poll publishes it again
            key = (observation.series_id, observation.obs_date)
            with self._lock:
                held = self._delivered.get(key)
                if held is None or held.realtime_start <= observation.realtime_start:
                    self._delivered[key] = observation

        return on_delivery

    def store(self) -> int:
        """Write the delivered vintages in one transaction; kept for the next call on failure."""
        with self._lock:
            taken, self._delivered = self._delivered, {}
        if not taken:
            return 0
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                cur.executemany(
                    UPSERT_VINTAGE,
                    [
                        (
                            self._producer,
                            o.series_id,
                            o.obs_date,
                            o.realtime_start,
                            o.value,
                            o.event_id,
                        )
                        for o in taken.values()
                    ],
                )
        except Exception:
            with self._lock:
                # Newer deliveries since the take win over what is put back.
                self._delivered = {**taken, **self._delivered}
            raise
        return len(taken)
