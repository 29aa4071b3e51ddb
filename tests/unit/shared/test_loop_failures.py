"""What the loop does after each kind of failure: only data errors blame a message."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from shared.errors import FencedError, SettingsError
from shared.loop.failures import Action, classify, describe
from shared.settings import PostgresSettings


@pytest.mark.parametrize(
    ("exc", "action"),
    [
        # One message's fault: bisect and dead-letter it.
        (pg_errors.NumericValueOutOfRange("numeric field overflow"), Action.DATA),
        (pg_errors.UntranslatableCharacter("cannot convert"), Action.DATA),
        (pg_errors.CheckViolation("violates check constraint"), Action.DATA),
        (pg_errors.NotNullViolation("null value"), Action.DATA),
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), Action.DATA),
        (OverflowError("int too big to convert"), Action.DATA),
        (ValueError("bad value"), Action.DATA),
        (UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"), Action.DATA),
        # Not the message's fault: never dead-letter.
        (psycopg.OperationalError("connection failed"), Action.RETRY),
        (PoolTimeout("couldn't get a connection after 1.00 sec"), Action.RETRY),
        (pg_errors.SerializationFailure("could not serialize access"), Action.RETRY),
        (pg_errors.DeadlockDetected("deadlock detected"), Action.RETRY),
        (pg_errors.LockNotAvailable("canceling statement due to lock timeout"), Action.RETRY),
        (pg_errors.AdminShutdown("terminating connection"), Action.RETRY),
        (pg_errors.TooManyConnections("too many clients"), Action.RETRY),
        (pg_errors.QueryCanceled("canceling statement due to statement timeout"), Action.HALVE),
        (pg_errors.ReadOnlySqlTransaction("read-only transaction"), Action.REFUSED),
        (pg_errors.InsufficientPrivilege("permission denied"), Action.REFUSED),
        (pg_errors.UndefinedTable("relation does not exist"), Action.REFUSED),
        (KeyError("a bug"), Action.REFUSED),
        (FencedError("moved"), Action.FENCED),
    ],
)
def test_classify(exc: BaseException, action: Action) -> None:
    assert classify(exc) is action


def test_describe_names_the_condition_in_one_line() -> None:
    text = describe(pg_errors.LockNotAvailable("canceling statement due to lock timeout\nmore"))
    assert text == "LockNotAvailable: canceling statement due to lock timeout"


def test_timeouts_derive_from_max_poll_interval_and_must_stay_well_below_it() -> None:
    derived = PostgresSettings().session_timeouts(300_000)
    assert derived["statement_timeout"] == 60_000 and derived["lock_timeout"] == 30_000
    assert PostgresSettings(lock_timeout_ms=150_000).session_timeouts(300_000)
    with pytest.raises(SettingsError, match="POSTGRES_STATEMENT_TIMEOUT_MS.*at most half"):
        PostgresSettings(statement_timeout_ms=150_001).session_timeouts(300_000)
    with pytest.raises(SettingsError, match="POSTGRES_LOCK_TIMEOUT_MS"):
        PostgresSettings(lock_timeout_ms=300_000).session_timeouts(300_000)
