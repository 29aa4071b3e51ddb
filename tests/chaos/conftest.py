"""Fixtures of the chaos suite: the integration fixtures themselves (imported, so there is one
definition of each; the servers and template are session fixtures in tests/conftest.py), and
the second database an undisturbed run writes beside the disturbed one."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from shared.settings import PostgresSettings
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
