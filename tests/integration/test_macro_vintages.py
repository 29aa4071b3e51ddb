"""FRED vintages: storage's rule for the missing value "." (a NULL is a value too), and
producer.macro comparing with its own record of what it delivered, never with storage's table."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg

from producer.macro.parsing import parse_observations
from producer.macro.service import run
from shared.health import Health
from shared.kafka import Topics
from shared.schemas import encode
from shared.settings import DataSource, MacroSettings, Settings, SourceSettings
from tests.integration.bar_stream import end_offsets, publish
from tests.integration.storage_thread import fast_consumer, storage_running, wait_stored

OBS_DATE = "1946-01-01"  # GDP's first dates are "." in the recorded responses


def vintage(realtime_start: str, value: str) -> dict[str, Any]:
    """One FRED observation as the API lists it (derived from the recorded GDP body's shape)."""
    return {
        "realtime_start": realtime_start,
        "realtime_end": "9999-12-31",
        "date": OBS_DATE,
        "value": value,
    }


def rows(settings: Settings) -> list[tuple[date, float | None]]:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        return conn.execute(
            "SELECT realtime_start, value FROM macro_observations ORDER BY realtime_start"
        ).fetchall()


def test_a_missing_value_published_again_under_a_later_realtime_start_adds_no_vintage(
    settings_factory: Callable[..., Settings], topics: Topics
) -> None:
    settings = settings_factory(consumer=fast_consumer())

    def send(*observations: dict[str, Any]) -> None:
        parsed = parse_observations("GDP", list(observations), None, datetime.now(UTC))
        encoded = [(b"GDP", encode(o)) for o in parsed.observations]
        publish(settings.kafka, topics.macro_observations, encoded)
        wait_stored(settings, topics.macro_observations)

    with storage_running(settings):
        send(vintage("2024-12-19", "."))
        assert rows(settings) == [(date(2024, 12, 19), None)]
        # A re-publish (a crash after delivery, a redrive, a poll while storage lagged): FRED
        # stamps the request date, the value is still ".". Not a revision.
        send(vintage("2024-12-20", "."))
        assert rows(settings) == [(date(2024, 12, 19), None)]
        # Several at once (one batch, or more: either way): the first is compared with the
        # stored NULL, the others with the one before them. A value after "." is a revision,
        # and "." after a value is one too.
        send(
            vintage("2024-12-21", "."),
            vintage("2024-12-22", "."),
            vintage("2024-12-23", "1.5"),
            vintage("2024-12-24", "."),
        )
        assert rows(settings) == [
            (date(2024, 12, 19), None),
            (date(2024, 12, 23), 1.5),
            (date(2024, 12, 24), None),
        ]


def test_the_producer_does_not_publish_again_what_it_delivered_while_storage_lags(
    settings_factory: Callable[..., Settings], topics: Topics, recordings: Path
) -> None:
    settings = settings_factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=recordings),
        macro=MacroSettings(series=["GDP"]),
        consumer=fast_consumer(),
    )
    # No storage consumer runs: macro_observations stays empty, as when storage lags a poll.
    first = run(settings, threading.Event(), Health("producer.macro"), once=True)
    assert first > 0
    before = end_offsets(settings.kafka, topics.macro_observations)
    assert sum(before.values()) == first
    assert run(settings, threading.Event(), Health("producer.macro"), once=True) == 0
    assert end_offsets(settings.kafka, topics.macro_observations) == before
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        recorded = conn.execute("SELECT count(*) FROM producer_vintages").fetchone()
        stored = conn.execute("SELECT count(*) FROM macro_observations").fetchone()
    assert recorded == (first,) and stored == (0,)
