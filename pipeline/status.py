"""`python -m pipeline status` (or `python start_pipeline.py status`): one screen of the running
pipeline, from each service's /metrics and /healthz, the supervisor's state file, the broker and
PostgreSQL. Exit code 0 when everything is green and fresh, 1 when something is red or stale."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pipeline.figures import consumer_lag
from pipeline.freshness import Freshness, assess, slas_for
from pipeline.freshness_reader import newest_timestamps
from pipeline.lag import stored_offsets, watermarks
from pipeline.replicas import Reading, combine, read_replicas
from pipeline.status_screen import Screen, ServiceRow, render
from pipeline_supervisor.state_file import read_state, state_path
from pipeline_supervisor.status import scrape_host
from shared import services
from shared.calendar import get_calendar
from shared.db import first_line
from shared.errors import SettingsError
from shared.settings import Settings, load_settings

# A state file older than this is from a supervisor that is gone.
STATE_FRESH_S = 120.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline status",
        description=__doc__,
    )
    parser.add_argument(
        "--sample",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between the two scrapes a rate is measured over (default: 1)",
    )
    parser.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"pipeline status: {exc}", file=sys.stderr)
        return 2
    screen = gather(settings, args.sample)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    print(render(screen, color))
    return 1 if screen.red else 0


def gather(settings: Settings, sample_s: float) -> Screen:
    """Everything the screen shows, read now."""
    now = datetime.now(UTC)
    host = scrape_host(settings.health.host)
    watched = list(services.all_services())
    expected = {one.name: settings.prometheus.replicas.get(one.name, 1) for one in watched}

    def read_all() -> dict[str, dict[int, Reading]]:
        base = settings.health.base_port
        return {one.name: read_replicas(one, host, base, expected[one.name]) for one in watched}

    first = read_all()
    time.sleep(sample_s)
    second = read_all()
    supervisor, states = _supervisor(settings)
    lags, database = _lag_and_freshness(settings, now)
    lag_by_group, verdicts = lags
    groups = {
        services.CONSUMER_STORAGE.name: settings.consumer.group_storage,
        services.ANALYTICS_CONSUMER.name: settings.consumer.group_analytics,
        services.ANALYTICS_FORECASTER.name: settings.consumer.group_forecaster,
    }
    rows = []
    for one in watched:
        service = combine(first[one.name], second[one.name], expected[one.name])
        state = states.get(one.name, {})
        rows.append(
            ServiceRow(
                one.name,
                str(state.get("state", "up" if service.up else "down")),
                service.healthy,
                service.rate,
                service.rows,
                lag_by_group.get(groups.get(one.name, "")),
                state.get("restarts"),
                service.reasons,
                service.notes,
                service.replicas,
            )
        )
    return Screen(now, rows, verdicts, supervisor, database)


def _supervisor(settings: Settings) -> tuple[str, dict[str, dict[str, Any]]]:
    path = state_path(settings.stack, settings.health)
    found = read_state(path)
    if found is None:
        return "no start_pipeline.py state: states from /metrics, restarts unknown", {}
    at, states = found
    age = time.time() - at
    if age > STATE_FRESH_S:
        return f"start_pipeline.py state is {age:.0f}s old: ignored", {}
    return f"start_pipeline.py state {age:.0f}s old", states


def _lag_and_freshness(
    settings: Settings, now: datetime
) -> tuple[tuple[dict[str, int], list[Freshness]], str | None]:
    """Summed lag per consumer group and the freshness verdicts; or why they are unknown."""
    slas = slas_for(settings.freshness, settings.market.interval, settings.forecast.every)
    try:
        with psycopg.connect(settings.postgres.conninfo(), connect_timeout=3) as conn:
            newest = newest_timestamps(conn, settings.market.interval)
            stored = stored_offsets(conn)
    except psycopg.Error as exc:
        return ({}, []), f"PostgreSQL at {settings.postgres.describe()}: {first_line(exc)}"
    verdicts = assess(newest, slas, get_calendar(settings.market.exchange), now)
    lag_by_group: dict[str, int] = {}
    try:
        admin = AdminClient(settings.kafka.client_config())
        marks = watermarks(
            admin, {topic for _, topic, _ in stored}, settings.kafka.connect_timeout_s
        )
    except KafkaException:
        marks = {}
    for figure in consumer_lag(stored, marks):
        group = figure.labels["group"]
        lag_by_group[group] = lag_by_group.get(group, 0) + int(figure.value)
    return (lag_by_group, verdicts), None
