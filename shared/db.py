"""Thin psycopg 3 helpers: a connection pool and a fail-fast reachability check."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import psycopg
from psycopg_pool import ConnectionPool

from shared.errors import SettingsError
from shared.settings import PostgresSettings


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_database(settings: PostgresSettings) -> None:
    """Fail fast with one clear line when the configured database does not answer."""
    try:
        with psycopg.connect(settings.conninfo()) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        raise SettingsError(
            f"PostgreSQL at {settings.describe()} (POSTGRES_HOST/POSTGRES_PORT/POSTGRES_DBNAME/"
            f"{settings.login_names()}) did not answer: {first_line(exc)}"
        ) from None


def make_pool(
    settings: PostgresSettings,
    name: str,
    configure: Callable[[psycopg.Connection], None] | None = None,
    session: Mapping[str, int] | None = None,
) -> ConnectionPool:
    """A pool that opens lazily: a consumer keeps running (paused) while Postgres is down.

    `session`: server settings for every connection (e.g. statement_timeout in ms), sent at
    connect time so they hold from the first statement on."""
    options = " ".join(f"-c {name}={value}" for name, value in (session or {}).items())
    pool = ConnectionPool(
        settings.conninfo(),
        kwargs={"options": options} if options else None,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        name=name,
        open=False,
        # A broken connection is replaced rather than handed out.
        check=ConnectionPool.check_connection,
        # How long a caller waits for a connection before treating Postgres as down.
        timeout=settings.connect_timeout_s,
        # The pool's reconnect backoff doubles without a cap: give each attempt series up
        # quickly so the next request starts a fresh one (recovery within seconds, not minutes).
        reconnect_timeout=2 * settings.connect_timeout_s,
        configure=configure,
    )
    pool.open(wait=False)
    return pool
