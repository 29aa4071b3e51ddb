"""Which failures are one message's fault, and what the loop does about each of the others.

Only *data* errors are caused by a message: SQLSTATE classes 22 (data exception) and 23
(integrity violation), and the Python value errors raised while a row is encoded or processed
(`OverflowError`, `ValueError`, `UnicodeEncodeError`). For those the loop bisects the batch to
find the message and dead-letters it. Nothing else may ever dead-letter good data:

| failure                                              | action                              |
|------------------------------------------------------|-------------------------------------|
| connection lost, pool timeout, admin_shutdown        | `RETRY`, backoff; "PostgreSQL down" |
| serialization failure, deadlock, lock_not_available  | `RETRY`, backoff                    |
| query_canceled (57014, the statement timeout)        | `HALVE`: retry with half the batch  |
| read_only_sql_transaction, insufficient_privilege,   | `REFUSED`: pause, health red with   |
| undefined_table, and anything not named here         | the reason, retry slowly            |
"""

from __future__ import annotations

from enum import Enum

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from shared.db import first_line
from shared.errors import FencedError


class Action(Enum):
    DATA = "data"  # one message's fault: bisect, dead-letter it
    FENCED = "fenced"  # the batch lost its partitions or its start: drop it, re-position
    RETRY = "retry"  # transient: the same batch again after a backoff
    HALVE = "halve"  # too slow: the first half of the batch, then the rest
    REFUSED = "refused"  # the database will not take it until someone acts: pause, retry slowly


# SQLSTATE classes that pass: connection exception, transaction rollback (serialization,
# deadlock), insufficient resources (too many connections, disk full), operator intervention.
_TRANSIENT_CLASSES = ("08", "40", "53", "57")
_VALUE_ERRORS = (OverflowError, ValueError, UnicodeEncodeError)


def classify(exc: BaseException) -> Action:
    """What the loop does after `exc` ended a batch's transaction."""
    if isinstance(exc, FencedError):
        return Action.FENCED
    if isinstance(exc, PoolTimeout):
        return Action.RETRY
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate or ""
        if state[:2] in ("22", "23"):
            return Action.DATA
        if isinstance(exc, pg_errors.QueryCanceled):
            return Action.HALVE
        if state[:2] in _TRANSIENT_CLASSES or isinstance(exc, pg_errors.LockNotAvailable):
            return Action.RETRY
        if not state and isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
            return Action.DATA  # raised by psycopg itself while adapting a value (e.g. NUL)
        if not state and isinstance(exc, psycopg.OperationalError):
            return Action.RETRY  # the connection itself failed
        return Action.REFUSED
    if isinstance(exc, _VALUE_ERRORS):
        return Action.DATA
    return Action.REFUSED


def describe(exc: BaseException) -> str:
    """One line naming the failure, with its SQLSTATE name when there is one."""
    name = getattr(getattr(exc, "diag", None), "sqlstate", None)
    condition = type(exc).__name__
    detail = first_line(exc)
    return f"{condition} ({name}): {detail}" if name else f"{condition}: {detail}"
