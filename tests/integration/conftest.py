"""Fixtures on the real test stack: Kafka + PostgreSQL, fresh topics and database per test.

The servers (`stack`) and the migrated template (`template_db`) are session fixtures in
tests/conftest.py, so every room that imports these fixtures (tests/chaos) shares one of each.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from shared.kafka import Topics, delete_topics, ensure_topics
from shared.settings import (
    ConsumerSettings,
    HealthSettings,
    KafkaSettings,
    MarketSettings,
    PostgresSettings,
    Settings,
    SourceSettings,
    StackSettings,
)
from tests.conftest import admin_conninfo
from tests.integration.stacks import TestStack


@contextmanager
def database_from(template_db: str) -> Iterator[PostgresSettings]:
    """A fresh migrated database (a copy of the session's template), dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    try:
        yield PostgresSettings(dbname=name)
    finally:
        with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def pg_settings(template_db: str) -> Iterator[PostgresSettings]:
    """A fresh migrated database for this test."""
    with database_from(template_db) as settings:
        yield settings


@pytest.fixture
def kafka_settings(stack: TestStack) -> Iterator[KafkaSettings]:
    """Kafka settings with a fresh topic prefix; the topics exist during the test and are
    deleted after it (a broker holding every test's topics slows down, then runs out of heap)."""
    settings = KafkaSettings(topic_prefix=f"t{uuid.uuid4().hex[:10]}.")
    topics = Topics(settings.topic_prefix)
    ensure_topics(settings, topics)
    yield settings
    problems = delete_topics(settings, topics)
    if problems:
        warnings.warn(f"test topics not deleted: {problems[0]}", stacklevel=1)


@pytest.fixture
def topics(kafka_settings: KafkaSettings) -> Topics:
    return Topics(kafka_settings.topic_prefix)


@pytest.fixture(autouse=True)
def own_consumer_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka consumer groups are broker-wide: tests side by side (xdist) with the default names
    joined each other's groups, and a member SIGKILLed in one held up the other's rebalances for
    its whole session timeout. Each test gets default group names of its own (ConsumerSettings,
    and through os.environ the services it starts)."""
    tag = uuid.uuid4().hex[:8]
    for name in ("storage", "analytics", "forecaster"):
        monkeypatch.setenv(f"CONSUMER_GROUP_{name.upper()}", f"{name}-{tag}")


@pytest.fixture
def settings_factory(
    kafka_settings: KafkaSettings, pg_settings: PostgresSettings
) -> Callable[..., Settings]:
    """Settings for this test's topics and database; keyword groups override (e.g. market=…)."""

    def build(**groups: object) -> Settings:
        defaults: dict[str, object] = {
            "kafka": kafka_settings,
            "postgres": pg_settings,
            "source": SourceSettings(),
            "market": MarketSettings(),
            "consumer": ConsumerSettings(),
            "health": HealthSettings(port=0),
            "stack": StackSettings(),
        }
        defaults.update(groups)
        return Settings(**defaults)  # type: ignore[arg-type]

    return build


@pytest.fixture
def service_env(kafka_settings: KafkaSettings, pg_settings: PostgresSettings) -> dict[str, str]:
    """Environment for a service subprocess pointed at this test's topics and database."""
    return {
        **os.environ,
        "KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "POSTGRES_DBNAME": pg_settings.dbname,
        "LOCAL_STACK": "off",
    }


@pytest.fixture
def group() -> str:
    """A consumer group of this test's own: a Kafka group is broker-wide, and a member killed in
    another test must not hold up this test's rebalances (nor the reverse)."""
    return f"g{uuid.uuid4().hex[:10]}"
