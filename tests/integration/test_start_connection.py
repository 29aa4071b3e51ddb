"""A service's start-up steps on PostgreSQL (the reachability check, the analytics consumer's
parameters id) ride out a session the server ends (an operator's pg_terminate_backend, a
failover): a server that answered is not a wrong setting. One that does not answer still fails
the start at once, in one line."""

from __future__ import annotations

import time

import psycopg
import pytest

from shared.db import check_database, on_new_connection
from shared.errors import SettingsError
from shared.settings import PostgresSettings
from tests.integration.processes import free_port


def test_a_session_the_server_ends_at_start_is_opened_again(
    pg_settings: PostgresSettings,
) -> None:
    sessions: list[int] = []

    def work(conn: psycopg.Connection) -> int:
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
        sessions.append(pid)
        if len(sessions) == 1:  # what the operator does to the first session
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return pid

    assert on_new_connection(pg_settings, work) == sessions[-1]
    assert len(sessions) == 2 and sessions[0] != sessions[1]


def test_a_server_that_does_not_answer_fails_the_start_at_once(
    pg_settings: PostgresSettings,
) -> None:
    wrong = pg_settings.model_copy(update={"port": free_port()})
    started = time.monotonic()
    with pytest.raises(SettingsError, match="did not answer"):
        check_database(wrong)
    assert time.monotonic() - started < 5


def test_the_session_ended_again_and_again_fails_the_start_after_the_wait(
    pg_settings: PostgresSettings,
) -> None:
    def always_ended(conn: psycopg.Connection) -> None:
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(SettingsError, match="terminating connection"):
        on_new_connection(pg_settings, always_ended, retry_for_s=1.0)
