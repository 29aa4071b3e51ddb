"""Wires the alert relay: one active instance (a session advisory lock), the topic outbox, a
worker per further sink (analytics/alerts/relay.py says the order of a round)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import psycopg
import requests

from analytics.alerts import store
from analytics.alerts.relay import BACKLOG, PublishError, SinkWorker, TopicOutbox
from analytics.alerts.sinks import AlertmanagerSink, Backoff, WebhookSink
from shared import services
from shared.db import check_database, first_line
from shared.health import Health
from shared.kafka import check_broker, topics_for
from shared.settings import AlertSettings, Settings

SERVICE = services.ALERT_RELAY.name


def run(settings: Settings, stop: threading.Event, health: Health) -> None:
    check_broker(settings.kafka)
    check_database(settings.postgres)
    alerts = settings.alerts
    conninfo = settings.postgres.conninfo()
    active = threading.Event()
    session = requests.Session()
    webhook, alertmanager = sinks(alerts, session)
    workers = {
        "webhook": SinkWorker("webhook", webhook, conninfo, alerts, health, active, stop),
        "alertmanager": SinkWorker(
            "alertmanager", alertmanager, conninfo, alerts, health, active, stop
        ),
    }
    topic = topics_for(settings.kafka).alerts_events
    outbox = TopicOutbox(settings.kafka, SERVICE, topic, alerts.alert_relay_batch_size)
    try:
        Relay(conninfo, outbox, workers, alerts, health, active).run(stop)
    finally:
        session.close()


def sinks(
    alerts: AlertSettings, session: requests.Session
) -> tuple[WebhookSink | None, AlertmanagerSink | None]:
    """The configured further sinks (None: not configured, its events are marked skipped)."""
    timeout = alerts.alert_http_timeout_s
    webhook = (
        WebhookSink(alerts.alert_webhook_url.get_secret_value(), session, timeout)
        if alerts.alert_webhook_url is not None
        else None
    )
    alertmanager = (
        AlertmanagerSink(alerts.alertmanager_url, session, timeout, alerts.alertmanager_resend_s)
        if alerts.alertmanager_url
        else None
    )
    return webhook, alertmanager


class Relay:
    """The active/standby loop around the topic outbox and the sink workers."""

    def __init__(
        self,
        conninfo: str,
        outbox: TopicOutbox,
        workers: Mapping[str, SinkWorker],
        alerts: AlertSettings,
        health: Health,
        active: threading.Event,
    ) -> None:
        self._conninfo = conninfo
        self._outbox = outbox
        self._workers = workers
        self._poll_s = alerts.alert_relay_poll_s
        self._backoff = Backoff(alerts.alert_retry_initial_s, alerts.alert_retry_max_s)
        self._health = health
        self._active = active

    def run(self, stop: threading.Event) -> None:
        for worker in self._workers.values():
            worker.start()
        failures = 0
        try:
            while not stop.is_set():
                try:
                    with psycopg.connect(self._conninfo, autocommit=True) as conn:
                        failures = 0
                        self._health.green("postgres")
                        self._lead(conn, stop)
                except psycopg.Error as exc:  # the loop's boundary: red, retried
                    self._active.clear()
                    failures += 1
                    self._health.clear_note("role")
                    self._health.red("postgres", f"PostgreSQL: {first_line(exc)}")
                    stop.wait(self._backoff.delay(failures))
        finally:
            self._active.clear()
            for worker in self._workers.values():
                worker.wake.set()
                worker.join(timeout=15)
            self._outbox.close()

    def _lead(self, conn: psycopg.Connection, stop: threading.Event) -> None:
        while not store.try_relay_lock(conn):
            self._health.note("role", "standby: another alert relay is active")
            if stop.wait(self._poll_s):
                return
        self._health.note("role", "active")
        conn.execute(f"LISTEN {store.CHANNEL}")
        self._active.set()
        failures = 0
        try:
            while not stop.is_set():
                try:
                    full = self._outbox.publish_round(conn, stop)
                    failures = 0
                    self._health.green("kafka")
                except PublishError as exc:
                    failures += 1
                    self._health.red("kafka", f"{self._outbox.topic}: {exc}")
                    full = False
                backlog = store.unpublished_count(conn)
                BACKLOG.labels("topic").set(backlog)
                self._health.note("topic", f"{self._outbox.topic}: backlog {backlog}")
                for worker in self._workers.values():
                    worker.wake.set()
                if failures:
                    stop.wait(self._backoff.delay(failures))
                elif not full:
                    self._wait(conn, stop)
        finally:
            self._active.clear()

    def _wait(self, conn: psycopg.Connection, stop: threading.Event) -> None:
        """Until a NOTIFY on the alerts channel, the poll interval, or stop."""
        deadline = time.monotonic() + self._poll_s
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            # Exhausted (list): the generator holds the connection's lock while it runs.
            if list(conn.notifies(timeout=min(left, 0.5), stop_after=1)):
                return
