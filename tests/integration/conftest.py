"""Fixtures on the real test stack: Kafka + PostgreSQL, fresh topics and database per test."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from db.bootstrap import bootstrap
from db.migrate import migrate
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
from tests.integration.stacks import TestStack, start_test_stack

# One template per pytest session, so two sessions on one stack never drop each other's.
TEMPLATE_DB = f"pipeline_test_template_{os.getpid()}"


@pytest.fixture(scope="session")
def stack() -> Iterator[TestStack]:
    """Start the test servers once per session (see tests/integration/stacks.py)."""
    servers = start_test_stack()
    yield servers
    servers.close()


def _admin_conninfo() -> str:
    return PostgresSettings().conninfo(dbname="postgres")


@pytest.fixture(scope="session")
def template_db(stack: TestStack) -> Iterator[str]:
    """A database with every migration applied once per session; tests copy it."""
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    migrate(PostgresSettings().conninfo(dbname=TEMPLATE_DB))
    # The writer and reader roles (cluster-wide) and their grants and default privileges (in the
    # template, so every test database copies them): services started by tests log in as the writer.
    bootstrap(PostgresSettings(), dbname=TEMPLATE_DB)
    yield TEMPLATE_DB
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB))
        )


@pytest.fixture
def pg_settings(template_db: str) -> Iterator[PostgresSettings]:
    """A fresh migrated database for this test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    yield PostgresSettings(dbname=name)
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


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
