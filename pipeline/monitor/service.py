"""Wires the monitor: each round reads offsets, watermarks, freshness and every service's
/metrics, publishes them as gauges, writes them to pipeline_metrics and runs partition upkeep.

A failed round turns health red and is tried again next round; nothing here stops the service
but SIGTERM (it watches the pipeline, so it must outlive the pipeline's troubles).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pipeline import figures as fig
from pipeline.freshness import State, assess, slas_for
from pipeline.freshness_reader import newest_timestamps
from pipeline.lag import stored_offsets, watermarks
from pipeline.monitor import gauges, store
from pipeline.monitor.upkeep import partition_upkeep
from pipeline.replicas import combine, read_replicas
from pipeline_supervisor.status import scrape_host
from shared import services
from shared.calendar import get_calendar
from shared.db import check_database, first_line
from shared.health import Health
from shared.kafka import check_broker
from shared.metrics import MONITOR_RUNS
from shared.settings import Settings

logger = logging.getLogger(__name__)

SERVICE = services.PIPELINE_MONITOR.name


def run(settings: Settings, stop: threading.Event, health: Health) -> None:
    check_broker(settings.kafka)
    check_database(settings.postgres)
    monitor = Monitor(settings, health)
    while not stop.is_set():
        started = time.monotonic()
        monitor.round(datetime.now(UTC))
        stop.wait(max(0.0, settings.monitor.interval_s - (time.monotonic() - started)))


class Monitor:
    """One round at a time (see the module docstring)."""

    def __init__(self, settings: Settings, health: Health) -> None:
        self._settings = settings
        self._health = health
        self._conninfo = settings.postgres.conninfo()
        self._admin = AdminClient(settings.kafka.client_config())
        self._calendar = get_calendar(settings.market.exchange)
        self._slas = slas_for(settings.freshness, settings.market.interval, settings.forecast.every)
        self._host = scrape_host(settings.health.host)
        self._watched = [one for one in services.all_services() if one.name != SERVICE]
        self._replicas = settings.prometheus.replicas

    def round(self, now: datetime) -> list[fig.Figure] | None:
        """Collect, publish and store one round's figures; None when the database failed."""
        try:
            with psycopg.connect(self._conninfo, connect_timeout=5) as conn:
                newest = newest_timestamps(conn, self._settings.market.interval)
                stored = stored_offsets(conn)
                alerts = store.alert_counts(conn)
                conn.commit()
                figures = self._figures(now, newest, stored, alerts)
                store.write_figures(
                    conn, now, figures, timedelta(days=self._settings.monitor.retention_days)
                )
        except psycopg.Error as exc:
            MONITOR_RUNS.labels("failed").inc()
            self._health.red("postgres", f"PostgreSQL: {first_line(exc)}")
            return None
        self._health.green("postgres")
        MONITOR_RUNS.labels("ok").inc()
        partition_upkeep(self._settings, self._health, now)
        return figures

    def _figures(
        self,
        now: datetime,
        newest: dict[str, datetime | None],
        stored: fig.StoredOffsets,
        alerts: dict[tuple[str, str], int],
    ) -> list[fig.Figure]:
        verdicts = assess(newest, self._slas, self._calendar, now)
        stale = [f"{v.domain} stale ({v.detail})" for v in verdicts if v.state is State.STALE]
        if stale:
            # A note, not red: the monitor works; the data it watches is late (its gauge says so).
            self._health.note("stale", "; ".join(stale))
        else:
            self._health.clear_note("stale")
        lag = self._lag(stored)
        figures = [
            *lag,
            *fig.freshness(verdicts),
            *fig.alert_events(alerts),
            *fig.services(self._readings()),
        ]
        gauges.publish(figures)
        return figures

    def _lag(self, stored: fig.StoredOffsets) -> list[fig.Figure]:
        topics = {topic for _, topic, _ in stored}
        try:
            marks = watermarks(self._admin, topics, self._settings.kafka.connect_timeout_s)
        except KafkaException as exc:
            self._health.red("kafka", f"Kafka: {exc.args[0].str() if exc.args else exc}")
            return []
        self._health.green("kafka")
        return fig.consumer_lag(stored, marks)

    def _readings(self) -> Sequence[fig.ServiceReading]:
        """Each service over all its replicas: up when one answered, healthy when every one
        expected answered green, its totals summed."""
        readings = []
        base = self._settings.health.base_port
        for one in self._watched:
            expected = self._replicas.get(one.name, 1)
            service = combine({}, read_replicas(one, self._host, base, expected), expected)
            readings.append(
                fig.ServiceReading(
                    one.name,
                    up=service.up,
                    healthy=service.healthy,
                    messages=service.messages,
                    rows=service.rows,
                )
            )
        return readings
