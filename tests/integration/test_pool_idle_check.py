"""A pooled connection terminated while it sat idle is replaced before it is handed out (the
pool checks connections idle longer than CHECK_AFTER_IDLE_S, shared/db.py)."""

from __future__ import annotations

import time

import psycopg

from shared.db import CHECK_AFTER_IDLE_S, make_pool
from shared.settings import PostgresSettings


def test_a_connection_terminated_while_idle_is_replaced_before_use(
    pg_settings: PostgresSettings,
) -> None:
    with make_pool(pg_settings, "pool-idle-check") as pool:
        pool.wait(10)
        with pool.connection() as conn:
            (first_pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
        with psycopg.connect(pg_settings.conninfo(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first_pid,))
        time.sleep(CHECK_AFTER_IDLE_S + 0.5)
        for _ in range(pg_settings.pool_max_size + 1):
            with pool.connection(timeout=10) as conn:
                (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
                assert pid != first_pid
