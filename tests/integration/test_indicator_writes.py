"""How the analytics consumer writes indicators rows: COPY straight into the table, and the
staging way (skipping rows already there) only when a batch meets one: its transaction is then
written again, the staging way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from analytics import store
from analytics.consumer.handler import AnalyticsHandler
from analytics.indicators import IndicatorParams, IndicatorValues
from shared.loop.commit import in_transaction
from shared.loop.direct_copy import STAGED_AFTER_CONFLICT
from shared.settings import PostgresSettings
from tests.unit.analytics.test_handler_process import RULES, bar
from tests.unit.analytics.test_handler_process import records as handler_records

T0 = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)


def rows(params: int, first: int, count: int, value: float) -> list[store.IndicatorRow]:
    values = IndicatorValues(*([value] * len(IndicatorValues._fields)))
    return [
        store.indicator_row("AAPL", "1m", T0 + timedelta(minutes=i), values, params, 1.0)
        for i in range(first, first + count)
    ]


def stored(conn: psycopg.Connection) -> dict[datetime, float]:
    return dict(conn.execute("SELECT ts, rsi FROM indicators ORDER BY ts").fetchall())


def staged(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM staging_indicators").fetchone()[0]


@pytest.fixture
def writer(pg_settings: PostgresSettings) -> Iterator[tuple[psycopg.Connection, int]]:
    """A connection as the consumer's pool makes it (its staging table), and the default
    periods' params_id."""
    with psycopg.connect(pg_settings.conninfo(), autocommit=True) as conn:
        conn.execute(store.CREATE_STAGING)
        yield conn, store.params_id(conn, IndicatorParams())


def test_a_batch_is_copied_straight_in_and_one_meeting_a_stored_row_fails_its_transaction(
    writer: tuple[psycopg.Connection, int],
) -> None:
    conn, params = writer
    with conn.transaction():
        assert store.write_indicators(conn, rows(params, 0, 50, 1.0), direct=True) == 50
        assert staged(conn) == 0  # straight in
    # No savepoint: the loop rolls the transaction back and writes the batch again the staging
    # way (shared/loop/direct_copy.py); nothing of the failed COPY stays.
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        store.write_indicators(conn, rows(params, 40, 80, 2.0), direct=True)
    assert len(stored(conn)) == 50
    with conn.transaction():
        # Minutes 40..119: ten already stored (kept as they are), seventy new.
        assert store.write_indicators(conn, rows(params, 40, 80, 2.0)) == 70
        assert staged(conn) == 80  # the staging way
    written = stored(conn)
    assert len(written) == 120
    assert {written[T0 + timedelta(minutes=i)] for i in range(50)} == {1.0}
    assert {written[T0 + timedelta(minutes=i)] for i in range(50, 120)} == {2.0}


def test_a_row_the_database_rejects_is_not_mistaken_for_a_stored_one(
    pg_settings: PostgresSettings,
) -> None:
    with psycopg.connect(pg_settings.conninfo(), autocommit=True) as conn:
        conn.execute(store.CREATE_STAGING)
        unknown_params = 1_000_000  # no such indicator_params row: the foreign key refuses it
        with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
            store.write_indicators(conn, rows(unknown_params, 0, 5, 1.0), direct=True)
        assert stored(conn) == {}


def test_the_consumer_copies_batches_straight_in_and_goes_the_staging_way_after_a_conflict(
    writer: tuple[psycopg.Connection, int],
) -> None:
    conn, params = writer
    handler = AnalyticsHandler("g", IndicatorParams(), params, "XNYS", RULES, 3600)
    states: dict = {}
    minute = 0

    def write(count: int) -> tuple[int, int]:
        """Process and write the next `count` bars: (rows staged, rows in the table)."""
        nonlocal minute, states
        batch = [bar("AAPL", minute + i, 100.0 + (minute + i) % 7) for i in range(count)]
        effects = handler.process(handler_records(batch, minute), states)
        minute += count
        seen = []

        def steps(conn: psycopg.Connection) -> None:
            handler.write(conn, effects)
            seen.append(staged(conn))

        in_transaction(lambda: nullcontext(conn), steps)  # as the loop writes a batch
        states = {**states, **effects.states}
        return seen[-1], len(stored(conn))

    assert write(500) == (0, 500)  # straight in
    assert write(10) == (0, 510)  # a live-sized batch too
    # A row of the next batch is already there (written by someone else): it is skipped,
    # and the following batches go the staging way before trying straight in again.
    taken = store.indicator_row(
        "AAPL", "1m", bar("AAPL", minute + 3, 1.0).ts, IndicatorValues(*[9.0] * 12), params, 1.0
    )
    with conn.transaction():
        store.write_indicators(conn, [taken])
    # Its direct COPY fails the transaction; written again the staging way, the one already
    # there is skipped, not overwritten.
    assert write(50) == (50, 560)
    for _ in range(STAGED_AFTER_CONFLICT):
        assert write(10)[0] == 10
    assert write(10)[0] == 0
