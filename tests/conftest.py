"""Test-wide setup: the test stack's addresses, a clean settings environment, the recordings, and
the session's servers and migrated template database (here, not in tests/integration/conftest.py,
so that tests/chaos, which imports the integration fixtures, shares the one of each)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql
from pydantic_settings import BaseSettings

from db.bootstrap import bootstrap
from db.migrate import migrate
from shared import settings as settings_module
from shared.settings import PostgresSettings

if TYPE_CHECKING:  # stacks imports this module (REPO_ROOT): imported where the stack starts
    from tests.integration.stacks import TestStack

REPO_ROOT = Path(__file__).resolve().parents[1]
# The recorded API responses bundled with the repository (recordings/PROVENANCE.md).
RECORDINGS = REPO_ROOT / "recordings"

# The test stack's own addresses (infra/test.env, the one place they live), unless the caller
# names other servers: `make test` never reuses a `make run` stack.
TEST_STACK_ENV = dict(
    line.split("=", 1)
    for line in (REPO_ROOT / "infra" / "test.env").read_text().splitlines()
    if line and not line.startswith("#")
)
for _name, _value in TEST_STACK_ENV.items():
    os.environ.setdefault(_name, _value)

# Every settings model of the pipeline, found in shared/settings.py itself: a new one is covered.
SETTINGS_MODELS: tuple[type[BaseSettings], ...] = tuple(
    value
    for value in vars(settings_module).values()
    if isinstance(value, type)
    and issubclass(value, BaseSettings)
    and value.__module__ == settings_module.__name__
)


def pipeline_env_names() -> frozenset[str]:
    """Every environment variable a settings model reads (`env_prefix` + field name)."""
    return frozenset(
        (model.model_config.get("env_prefix", "") + name).upper()
        for model in SETTINGS_MODELS
        for name in model.model_fields
    )


@pytest.fixture(scope="session", autouse=True)
def isolated_settings() -> Iterator[None]:
    """Tests see the pipeline's defaults, whatever the caller's shell or `.env` says.

    Every pipeline setting (or near miss of one) the caller exported is removed from os.environ
    (so from the services the tests start, too), except the test stack's addresses above; and no
    settings model reads a `.env` file. Session-scoped: the session fixtures that build settings
    see it as well.
    """
    keep = set(TEST_STACK_ENV)
    names = pipeline_env_names()
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            # pydantic-settings matches names case-insensitively; a near miss of a setting in the
            # caller's shell would stop every service the tests start.
            near_miss = settings_module.near_miss(name)
            if (name.upper() in names or near_miss) and name not in keep:
                patch.delenv(name)
        for model in SETTINGS_MODELS:
            patch.setitem(model.model_config, "env_file", None)
        yield


@pytest.fixture(scope="session")
def recordings() -> Path:
    """The folder of recorded API responses: the one way tests reach recorded data."""
    if not RECORDINGS.is_dir():
        pytest.fail(f"recorded data not found at {RECORDINGS}")
    return RECORDINGS


# One template per pytest session, so two sessions on one stack never drop each other's.
TEMPLATE_DB = f"pipeline_test_template_{os.getpid()}"


@pytest.fixture(scope="session")
def stack() -> Iterator[TestStack]:
    """Start the test servers once per session (see tests/integration/stacks.py)."""
    from tests.integration.stacks import start_test_stack

    servers = start_test_stack()
    yield servers
    servers.close()


def admin_conninfo() -> str:
    return PostgresSettings().conninfo(dbname="postgres")


@pytest.fixture(scope="session")
def template_db(stack: TestStack) -> Iterator[str]:
    """A database with every migration applied once per session; tests copy it."""
    with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    migrate(PostgresSettings().conninfo(dbname=TEMPLATE_DB))
    # The writer and reader roles (cluster-wide) and their grants and default privileges (in the
    # template, so every test database copies them): services started by tests log in as the writer.
    bootstrap(PostgresSettings(), dbname=TEMPLATE_DB)
    yield TEMPLATE_DB
    with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB))
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A `serial` test stops a shared server: under xdist it would break its neighbours."""
    if item.get_closest_marker("serial") and os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.fail(
            "a serial test under xdist: run it alone (`pytest -m serial`) and the rest with "
            '`-n N -m "not serial"` (the Makefile does both)',
            pytrace=False,
        )
