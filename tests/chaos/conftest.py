"""Fixtures of the chaos suite: the integration fixtures themselves (imported, so there is one
definition of each; the servers and template are session fixtures in tests/conftest.py), and
the second database an undisturbed run writes beside the disturbed one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.kafka import Topics
from shared.settings import KafkaSettings, PostgresSettings
from tests.integration.conftest import (  # noqa: F401 - fixtures, found by pytest by name
    database_from,
    kafka_settings,
    own_consumer_groups,
    pg_settings,
    service_env,
    topics,
)

# The long forms (200,000 bars, 20 kills and more) run only when asked: CHAOS_LONG=1.
CHAOS_LONG = os.environ.get("CHAOS_LONG") == "1"
long_form = pytest.mark.skipif(not CHAOS_LONG, reason="long form: set CHAOS_LONG=1")


@pytest.fixture
def reference_pg(template_db: str) -> Iterator[PostgresSettings]:
    """A second fresh database: the undisturbed run's, beside the test's own (`pg_settings`)."""
    with database_from(template_db) as settings:
        yield settings


@dataclass(frozen=True)
class Chaos:
    """What a chaos test runs on: this test's topics, its database and the undisturbed run's,
    the services' environment and a folder for their logs."""

    kafka: KafkaSettings
    topics: Topics
    pg: PostgresSettings
    reference_pg: PostgresSettings
    service_env: dict[str, str]
    tmp_path: Path


@pytest.fixture
def chaos(
    kafka_settings: KafkaSettings,  # noqa: F811 - the fixtures imported above, by name
    topics: Topics,  # noqa: F811
    pg_settings: PostgresSettings,  # noqa: F811
    reference_pg: PostgresSettings,
    service_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> Chaos:
    return Chaos(kafka_settings, topics, pg_settings, reference_pg, service_env, tmp_path)
