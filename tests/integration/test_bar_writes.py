"""How the storage consumer writes bars: COPY straight into price_bars, and the staging way
(first version wins, revisions recorded, conflicts counted) only when a batch meets a stored key
or holds one twice: its transaction is then written again, the staging way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from consumer.storage import repository
from consumer.storage.handler import StorageHandler
from db.partitions import ensure_partitions
from shared.kafka import Topics
from shared.loop.commit import in_transaction
from shared.loop.contract import Effects, Record
from shared.loop.direct_copy import STAGED_AFTER_CONFLICT, WriteAgain
from shared.schemas import Bar
from shared.settings import PostgresSettings, RetentionSettings

MONTH = datetime(2024, 1, 2, tzinfo=UTC)
TOPIC = "t.market.bars"


def record(minute: int, close: float, offset: int, symbol: str = "AAPL") -> Record:
    ts = MONTH + timedelta(minutes=minute)
    bar = Bar(
        event_id=f"{symbol}-{minute}-{offset}", source="test", symbol=symbol, interval="1m",
        ts=ts, open=close, high=close, low=close, close=close, adj_close=None, volume=1,
        fetched_at=ts,
    )  # fmt: skip
    return Record(TOPIC, 0, offset, None, bar, 0)


def records(first: int, count: int, close: float, offset: int = 0) -> list[Record]:
    return [record(first + i, close, offset + i) for i in range(count)]


def stored(conn: psycopg.Connection) -> dict[datetime, float]:
    return dict(conn.execute("SELECT ts, close FROM price_bars ORDER BY ts").fetchall())


def staged(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM staging_bars").fetchone()[0]


@pytest.fixture
def conn(pg_settings: PostgresSettings) -> Iterator[psycopg.Connection]:
    """A connection as the consumer's pool makes it (its staging tables), January's partition."""
    with psycopg.connect(pg_settings.conninfo(), autocommit=True) as conn:
        repository.prepare_connection(conn)
        ensure_partitions(conn, RetentionSettings(), MONTH)
        yield conn


def test_a_batch_of_new_bars_is_copied_straight_in(conn: psycopg.Connection) -> None:
    with conn.transaction():
        result = repository.write_bars(conn, records(0, 50, 1.0), direct=True)
        assert staged(conn) == 0
    assert result == repository.BarWriteResult(50, 0, 0, direct=True)
    assert len(stored(conn)) == 50
    # The statement trigger saw the COPY: the series' newest bar is known.
    (newest,) = conn.execute(
        "SELECT newest_ts FROM price_bar_series WHERE symbol = 'AAPL'"
    ).fetchone()
    assert newest == MONTH + timedelta(minutes=49)


def test_a_direct_copy_meeting_a_stored_key_fails_its_transaction(
    conn: psycopg.Connection,
) -> None:
    """No savepoint: the loop rolls the whole transaction back and writes the batch again
    (shared/loop/direct_copy.py); nothing of the failed COPY stays."""
    with conn.transaction():
        repository.write_bars(conn, records(0, 10, 1.0), direct=True)
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        repository.write_bars(conn, [*records(5, 10, 2.0, 100)], direct=True)
    assert stored(conn) == {MONTH + timedelta(minutes=i): 1.0 for i in range(10)}
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        repository.write_bars(conn, [record(20, 1.0, 7), record(20, 2.0, 3)], direct=True)


def test_the_staging_way_keeps_the_first_version_and_records_revisions(
    conn: psycopg.Connection,
) -> None:
    with conn.transaction():
        repository.write_bars(conn, records(0, 10, 1.0), direct=True)
    with conn.transaction():
        # Minutes 5..24: five stored (minute 5 in another version: a revision), fifteen new.
        batch = [record(5, 9.0, 100), *records(6, 4, 1.0, 101), *records(10, 15, 2.0, 105)]
        result = repository.write_bars(conn, batch)
        assert staged(conn) == 20
    assert result == repository.BarWriteResult(15, 1, 4, direct=False)
    prices = stored(conn)
    assert len(prices) == 25 and prices[MONTH + timedelta(minutes=5)] == 1.0  # kept as it was
    (revised,) = conn.execute("SELECT close FROM bar_revisions").fetchone()
    assert revised == 9.0


def test_a_key_twice_in_one_batch_keeps_its_earliest_offset(conn: psycopg.Connection) -> None:
    with conn.transaction():
        result = repository.write_bars(
            conn, [record(0, 1.0, 7), record(0, 2.0, 3), record(1, 1.0, 8)]
        )
    assert not result.direct
    assert stored(conn) == {MONTH: 2.0, MONTH + timedelta(minutes=1): 1.0}


def test_the_consumer_copies_straight_in_and_goes_the_staging_way_after_a_conflict(
    conn: psycopg.Connection,
) -> None:
    handler = StorageHandler(Topics("t."))
    minute = 0

    def write(batch: list[Record]) -> int:
        """Write a batch as the consumer does; the rows it staged."""
        nonlocal minute
        minute += len(batch)
        seen = []

        def steps(conn: psycopg.Connection) -> None:
            handler.write(conn, Effects(rows={TOPIC: batch}))
            seen.append(staged(conn))

        in_transaction(lambda: nullcontext(conn), steps)  # as the loop writes a batch
        return seen[-1]

    assert write(records(minute, 10, 1.0)) == 0  # straight in
    # Meets minute 0: the direct COPY fails its transaction, written again the staging way.
    assert write([record(0, 1.0, 99), *records(minute, 9, 1.0)]) == 10
    for _ in range(STAGED_AFTER_CONFLICT):
        assert write(records(minute, 10, 1.0)) == 10
    assert write(records(minute, 10, 1.0)) == 0
    assert len(stored(conn)) == 10 + 9 + 10 * (STAGED_AFTER_CONFLICT + 1)


def test_a_write_asked_for_again_runs_once_more_in_a_new_transaction(
    conn: psycopg.Connection,
) -> None:
    """WriteAgain rolls the first try back and runs the steps again once; a second one is a
    failure the loop handles like any other (never a loop of rewrites)."""
    tries: list[int] = []

    def steps(conn: psycopg.Connection) -> None:
        tries.append(len(tries))
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS written (try int)")
        conn.execute("INSERT INTO written VALUES (%s)", (tries[-1],))
        if len(tries) == 1:
            raise WriteAgain("first try")

    in_transaction(lambda: nullcontext(conn), steps)
    assert conn.execute("SELECT try FROM written").fetchall() == [(1,)]  # the first rolled back

    def always(conn: psycopg.Connection) -> None:
        tries.append(len(tries))
        raise WriteAgain("every try")

    with pytest.raises(WriteAgain):
        in_transaction(lambda: nullcontext(conn), always)
    assert len(tries) == 4
