"""The alert outbox relay: alert_events → alerts.events in id order, and the further sinks.

One relay is active at a time: it holds a session advisory lock (store.RELAY_LOCK_KEY) on the
connection it publishes with; another instance waits for the lock (health green, note
"standby"). A connection lost loses the lock: the relay goes back to waiting for it (that loop
is analytics/alert_relay/service.py's `Relay`).

One topic round, in this order (the guarantee: at least once, with a stable id):
1. read up to ALERT_RELAY_BATCH_SIZE rows `WHERE published_at IS NULL ORDER BY id`;
2. produce each (key: symbol, value: the event document) with the idempotent producer, in id
   order;
3. wait until Kafka confirmed or failed every delivery;
4. failpoint `relay_after_publish`;
5. set published_at on the confirmed prefix (up to the first failure, so the rest is published
   again in order). A crash between 3 and 5 publishes the same rows again, with the same ids.

Each further sink (webhook, Alertmanager) is a thread with its own connection, delivery marker
and backlog: it retries the oldest pending event with backoff until the sink takes it, so a
sink that is down holds back only itself, never the topic. Historical events, and every event
while a sink is not configured, are marked skipped instead of sent.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Counter, Gauge

from analytics.alerts import store
from analytics.alerts.sinks import (
    AlertmanagerSink,
    Backoff,
    DeliveryError,
    WebhookSink,
    encode_event,
)
from shared.db import first_line
from shared.health import Health
from shared.kafka import producer_config
from shared.loop import failpoints
from shared.metrics import MESSAGES
from shared.settings import AlertSettings, KafkaSettings

logger = logging.getLogger(__name__)

# A delivery Kafka has not confirmed by then fails, and its row is published again next round.
DELIVERY_TIMEOUT_MS = 30_000

BACKLOG = Gauge("pipeline_alert_backlog", "Alert events a sink has not taken yet", ["sink"])
DELIVERIES = Counter(
    "pipeline_alert_deliveries", "Alert event deliveries by sink and outcome", ["sink", "outcome"]
)


class PublishError(Exception):
    """Kafka did not confirm an event's delivery."""


class TopicOutbox:
    """Publishes unpublished rows to alerts.events and marks them (the round above)."""

    def __init__(self, kafka: KafkaSettings, client_id: str, topic: str, batch_size: int) -> None:
        self._config = {
            **producer_config(kafka, client_id),
            "message.timeout.ms": DELIVERY_TIMEOUT_MS,
        }
        self._producer: Producer | None = None
        self.topic = topic
        self._batch_size = batch_size

    def publish_round(self, conn: psycopg.Connection, stop: threading.Event) -> bool:
        """Publish one batch; True when it was full (more rows may be waiting)."""
        events = store.unpublished(conn, self._batch_size)
        if not events:
            return False
        if self._producer is None:
            self._producer = Producer(self._config)
        producer = self._producer
        outcomes: dict[int, KafkaError | None] = {}

        def delivered(event_id: int, err: KafkaError | None, _msg: Message) -> None:
            outcomes[event_id] = err

        for event in events:
            while True:
                try:
                    producer.produce(
                        self.topic,
                        key=event.symbol.encode(),
                        value=encode_event(event),
                        on_delivery=lambda err, msg, i=event.id: delivered(i, err, msg),
                    )
                    break
                except BufferError:  # the local queue is full: let it drain
                    producer.poll(0.1)
        deadline = time.monotonic() + DELIVERY_TIMEOUT_MS / 1000 + 5
        while len(outcomes) < len(events) and time.monotonic() < deadline and not stop.is_set():
            producer.poll(0.1)
        confirmed: list[int] = []
        for event in events:
            if event.id not in outcomes or outcomes[event.id] is not None:
                break
            confirmed.append(event.id)
        failpoints.reached("relay_after_publish", ids=confirmed)
        if confirmed:
            store.mark_published(conn, confirmed)
            MESSAGES.labels(self.topic, "published").inc(len(confirmed))
        if len(confirmed) < len(events) and not stop.is_set():  # stopping: the rest next time
            failed = events[len(confirmed)]
            error = outcomes.get(failed.id)
            if error is not None and error.fatal():
                self.close()  # a fatal idempotence error: the next round starts a new producer
            raise PublishError(
                f"event {failed.id}: {error.str() if error is not None else 'not confirmed'}"
            )
        return len(events) == self._batch_size

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None


class SinkWorker(threading.Thread):
    """Delivers events to one sink in id order while this relay is the active one."""

    def __init__(
        self,
        name: store.Sink,
        sink: WebhookSink | AlertmanagerSink | None,
        conninfo: str,
        alerts: AlertSettings,
        health: Health,
        active: threading.Event,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"alert-{name}", daemon=True)
        self.sink_name: store.Sink = name
        self._sink = sink  # None: not configured, every event is marked skipped
        self._conninfo = conninfo
        self._batch_size = alerts.alert_relay_batch_size
        self._poll_s = alerts.alert_relay_poll_s
        self._backoff = Backoff(alerts.alert_retry_initial_s, alerts.alert_retry_max_s)
        self._health = health
        self._active = active
        self._halt = stop
        self.wake = threading.Event()

    def run(self) -> None:
        failures = 0
        while not self._halt.is_set():
            if not self._active.wait(0.5):
                continue
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    failures = 0
                    self._serve(conn)
            except psycopg.Error as exc:  # the loop's boundary: logged, retried
                failures += 1
                logger.warning("%s: PostgreSQL: %s", self.sink_name, first_line(exc))
                self._halt.wait(self._backoff.delay(failures))

    def _serve(self, conn: psycopg.Connection) -> None:
        name, sink = self.sink_name, self._sink
        next_resend = 0.0
        while not self._halt.is_set() and self._active.is_set():
            self.wake.clear()  # before reading: a wake-up during the round is not lost
            store.skip_pending(conn, name, "historical", historical_only=True)
            full = False
            if sink is None:
                store.skip_pending(conn, name, "not configured", historical_only=False)
            else:
                events = store.sink_pending(conn, name, self._batch_size)
                for event in events:
                    if not event.historical and not self._deliver(conn, sink, event):
                        return  # stopping, or no longer the active relay
                full = len(events) == self._batch_size
                # Alertmanager forgets a firing alert by its endsAt: post what fires again.
                due = not full and time.monotonic() >= next_resend
                if isinstance(sink, AlertmanagerSink) and due:
                    self._resend(conn, sink)
                    next_resend = time.monotonic() + sink.resend_s
            self._report_backlog(conn)
            if not full:
                self.wake.wait(self._poll_s)

    def _report_backlog(self, conn: psycopg.Connection) -> None:
        name = self.sink_name
        backlog = store.sink_backlog(conn, name)
        BACKLOG.labels(name).set(backlog)
        self._health.note(
            name, f"{name}: " + (f"backlog {backlog}" if self._sink else "not configured")
        )

    def _deliver(
        self,
        conn: psycopg.Connection,
        sink: WebhookSink | AlertmanagerSink,
        event: store.AlertEvent,
    ) -> bool:
        """Send until the sink takes it (True), or stop / lost leadership (False)."""
        attempt = 0
        while True:
            try:
                sink.send(event)
            except DeliveryError as exc:
                attempt += 1
                DELIVERIES.labels(self.sink_name, "failed").inc()
                delay = self._backoff.delay(attempt)
                logger.debug("%s: event %d attempt %d: %s", self.sink_name, event.id, attempt, exc)
                self._health.red(
                    self.sink_name,
                    f"{self.sink_name}: event {event.id} not delivered ({exc}); retrying",
                )
                self._report_backlog(conn)
                if self._halt.wait(delay) or not self._active.is_set():
                    return False
                continue
            store.mark_delivered(conn, self.sink_name, event.id)
            DELIVERIES.labels(self.sink_name, "delivered").inc()
            self._health.green(self.sink_name)
            return True

    def _resend(self, conn: psycopg.Connection, sink: AlertmanagerSink) -> None:
        try:
            sink.send_many(store.delivered_active(conn, self.sink_name))
        except DeliveryError as exc:
            logger.warning("%s: re-posting the firing alerts failed: %s", self.sink_name, exc)
