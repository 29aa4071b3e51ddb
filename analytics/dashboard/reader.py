"""The dashboard's one door to PostgreSQL: a small pool of read-only sessions, one snapshot per
request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from analytics.dashboard import queries
from shared.db import make_pool
from shared.settings import PostgresSettings

T = TypeVar("T")
# Read-only at the server (a bug here can never write, whatever role it runs as), and a page
# request never waits long on a busy database.
SESSION = {"default_transaction_read_only": "on", "statement_timeout": 5000}


class DashboardReader:
    """Reads what the page shows; every call is one REPEATABLE READ snapshot."""

    def __init__(self, settings: PostgresSettings) -> None:
        self._pool: ConnectionPool = make_pool(settings, "dashboard", session=SESSION)  # type: ignore[arg-type]

    def _snapshot(self, read: Callable[[psycopg.Connection], T]) -> T:
        with self._pool.connection() as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                return read(conn)

    def series_list(self) -> list[tuple[str, str, datetime]]:
        return self._snapshot(queries.read_series_list)

    def series(
        self, symbol: str, interval: str, limit: int
    ) -> tuple[queries.SeriesData, dict[str, datetime | None], list[queries.ActiveAlert]]:
        """One series' chart data, its domains' newest timestamps, and every active alert."""

        def read(conn: psycopg.Connection):  # noqa: ANN202 (the tuple above)
            return (
                queries.read_series(conn, symbol, interval, limit),
                queries.read_series_newest(conn, symbol, interval),
                queries.read_active_alerts(conn),
            )

        return self._snapshot(read)

    def close(self) -> None:
        self._pool.close()
