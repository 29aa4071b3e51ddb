"""Time partitions on real PostgreSQL: 0008 over rows of the previous schema, partitions ahead,
rows moved out of the defaults, retention at its exact boundaries."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from consumer.storage.repository import COMPARE_WITH_STORED, CREATE_STAGING, write_bars
from db.migrate import discover, migrate
from db.partition_plan import add_months
from db.partitions import apply_retention, ensure_partitions
from shared.loop.contract import Record
from shared.schemas import Bar
from shared.settings import PostgresSettings, RetentionSettings

MIGRATION = next(m for m in discover() if m.path.name.startswith("0008_"))

INSERT_BAR = """
INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, adj_close, volume,
                        split_basis, source, event_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, 100, %s, 'test', %s)
"""
INSERT_INDICATOR = """
INSERT INTO indicators (symbol, interval, ts, sma_fast, rsi, params_id, split_basis)
VALUES (%s, %s, %s, %s, 50, %s, %s)
"""
INSERT_FORECAST = """
INSERT INTO forecasts (symbol, interval, origin_ts, step, target_ts, model, median, mean, lo80,
                       hi80, lo95, hi95)
VALUES (%s, '1d', %s, %s, %s, %s, 10, 10.1, 9, 11, 8, 12)
"""
INSERT_ERROR = """
INSERT INTO forecast_errors (symbol, interval, origin_ts, step, model, bar_ts, actual, abs_error,
                             scaled_error, inside80, inside95)
VALUES (%s, '1d', %s, %s, %s, %s, 10.5, 0.5, 0.4, true, true)
"""
# What people and services read, before and after the migration.
SNAPSHOTS = {
    "price_bars": "SELECT * FROM price_bars ORDER BY symbol, interval, ts",
    "indicators": "SELECT * FROM indicators ORDER BY symbol, interval, ts",
    "forecasts": "SELECT * FROM forecasts ORDER BY symbol, origin_ts, step, model",
    "forecast_errors": "SELECT * FROM forecast_errors ORDER BY symbol, origin_ts, step, model",
    "latest_bars": "SELECT * FROM latest_bars",
    "daily_bars": "SELECT * FROM daily_bars ORDER BY symbol, ts",
    "bars_with_indicators_adjusted": (
        "SELECT * FROM bars_with_indicators_adjusted ORDER BY symbol, interval, ts"
    ),
    "forecast_quality": "SELECT * FROM forecast_quality ORDER BY symbol, model, step",
    "latest_forecasts": "SELECT * FROM latest_forecasts ORDER BY symbol, step, model",
}
WHERE_ROWS_ARE = """
SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1 ORDER BY 1
"""


def utc(year: int, month: int, day: int = 1, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def conn(pg_settings: PostgresSettings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_settings.conninfo(), autocommit=True) as connection:
        yield connection


def fill_previous_schema(conn: psycopg.Connection) -> None:
    """Rows in every table 0008 converts, over two intervals and three months."""
    params_id = conn.execute(
        "INSERT INTO indicator_params (params) VALUES ('{\"sma\": 3}') RETURNING params_id"
    ).fetchone()[0]
    bars, indicators = [], []
    for symbol, basis in (("AAPL", 4.0), ("MSFT", 1.0)):
        for day in range(75):
            ts = utc(2024, 1, 1) + timedelta(days=day)
            bars.append(
                (
                    symbol,
                    "1d",
                    ts,
                    10 + day,
                    11 + day,
                    9 + day,
                    10.5 + day,
                    basis,
                    f"{symbol}d{day}",
                )
            )
            indicators.append((symbol, "1d", ts, 10.0 + day, params_id, basis))
        for minute in range(3):
            ts = utc(2024, 3, 14, 19, 57 + minute)
            bars.append((symbol, "1m", ts, 20, 21, 19, 20.5 + minute, basis, f"{symbol}m{minute}"))
    conn.cursor().executemany(INSERT_BAR, bars)
    conn.cursor().executemany(INSERT_INDICATOR, indicators)
    conn.execute(
        "INSERT INTO corporate_actions (symbol, ts, kind, ratio, source)"
        " VALUES ('AAPL', '2024-02-01 00:00+00', 'split', 4.0, 'test')"
    )
    for origin in (utc(2024, 1, 31), utc(2024, 2, 29)):
        conn.execute(
            "INSERT INTO forecast_origins (symbol, interval, origin_ts, outcome, searched,"
            " window_bars, scale) VALUES ('AAPL', '1d', %s, 'fitted', true, 30, 1.0)",
            (origin,),
        )
        for step in (1, 2):
            for model in ("arima", "naive"):
                target = origin + timedelta(days=step)
                conn.execute(INSERT_FORECAST, ("AAPL", origin, step, target, model))
                conn.execute(INSERT_ERROR, ("AAPL", origin, step, model, target))


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {name: conn.execute(query).fetchall() for name, query in SNAPSHOTS.items()}


def test_0008_converts_rows_of_the_previous_schema(
    pg_settings: PostgresSettings, tmp_path: Path
) -> None:
    previous = tmp_path / "previous"
    previous.mkdir()
    for migration in discover():
        if migration.version < MIGRATION.version:
            shutil.copy(migration.path, previous / migration.path.name)
    conninfo = pg_settings.conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    migrate(conninfo, previous, RetentionSettings())
    with psycopg.connect(conninfo, autocommit=True) as conn:
        fill_previous_schema(conn)
        before = snapshot(conn)

    assert migrate(conninfo, retention=RetentionSettings())[0] == MIGRATION.path.name

    with psycopg.connect(conninfo, autocommit=True) as conn:
        after = snapshot(conn)
        for name in SNAPSHOTS:
            assert after[name] == before[name], name
        assert len(before["price_bars"]) == 156 and len(before["forecast_errors"]) == 8
        assert len(before["latest_bars"]) == 4 and before["forecast_quality"]
        kinds = dict(
            conn.execute(
                "SELECT relname, relkind FROM pg_class WHERE relname IN"
                " ('price_bars', 'indicators', 'forecasts', 'forecast_errors')"
            ).fetchall()
        )
        assert kinds == dict.fromkeys(kinds, "p") and len(kinds) == 4
        # Every copied row sits in its own month's partition, none in a default.
        assert conn.execute(WHERE_ROWS_ARE.format(table="price_bars")).fetchall() == [
            ("price_bars_1d_p20240101", 62),
            ("price_bars_1d_p20240201", 58),
            ("price_bars_1d_p20240301", 30),
            ("price_bars_1m_p20240301", 6),
        ]
        assert conn.execute(WHERE_ROWS_ARE.format(table="forecast_errors")).fetchall() == [
            ("forecast_errors_p20240101", 4),
            ("forecast_errors_p20240201", 4),
        ]
        # The writers' ON CONFLICT targets are still unique keys.
        conn.execute(
            INSERT_BAR + " ON CONFLICT (symbol, interval, ts) DO NOTHING",
            ("AAPL", "1d", utc(2024, 1, 1), 1, 1, 1, 1, 1.0, "again"),
        )
        assert conn.execute("SELECT count(*) FROM price_bars").fetchone()[0] == 156


def partitions_of(conn: psycopg.Connection, parent: str) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass ORDER BY 1",
            (parent,),
        ).fetchall()
    ]


def test_partitions_exist_ahead_and_a_month_boundary_insert_lands_in_its_month(
    conn: psycopg.Connection,
) -> None:
    now = datetime.now(UTC)
    this_month = utc(now.year, now.month)
    # A fresh database: every interval has its default, no month is created for nothing.
    assert partitions_of(conn, "price_bars_1m") == ["price_bars_1m_default"]
    conn.execute(INSERT_BAR, ("AAPL", "1m", now, 1, 1, 1, 1, 1.0, "first"))
    ensure_partitions(conn, RetentionSettings(), now)
    # Written to: this month and RETENTION_PARTITIONS_AHEAD (2) more; others still untouched.
    assert partitions_of(conn, "price_bars_1m") == sorted(
        [f"price_bars_1m_p{add_months(this_month, ahead):%Y%m%d}" for ahead in range(3)]
        + ["price_bars_1m_default"]
    )
    assert partitions_of(conn, "price_bars_1d") == ["price_bars_1d_default"]
    conn.execute("DELETE FROM price_bars")
    boundary = add_months(this_month, 1)
    for ts in (boundary - timedelta(microseconds=1), boundary):
        conn.execute(INSERT_BAR, ("AAPL", "1m", ts, 1, 1, 1, 1, 1.0, f"b{ts.isoformat()}"))
    assert conn.execute(WHERE_ROWS_ARE.format(table="price_bars")).fetchall() == [
        (f"price_bars_1m_p{this_month:%Y%m%d}", 1),
        (f"price_bars_1m_p{boundary:%Y%m%d}", 1),
    ]


def test_upkeep_moves_rows_out_of_the_default_into_their_own_month(
    conn: psycopg.Connection,
) -> None:
    old = [utc(2019, 5, 31, 23, 59), utc(2019, 6, 1), utc(2019, 6, 30, 12)]
    for ts in old:
        conn.execute(INSERT_BAR, ("OLD", "1d", ts, 1, 2, 1, 1.5, 1.0, f"o{ts.isoformat()}"))
    before = conn.execute("SELECT * FROM price_bars ORDER BY ts").fetchall()
    assert conn.execute(WHERE_ROWS_ARE.format(table="price_bars")).fetchall() == [
        ("price_bars_1d_default", 3)
    ]
    now = datetime.now(UTC)
    report = ensure_partitions(conn, RetentionSettings(), now)
    assert report.moved_rows == 3 and not report.skipped
    ahead = [f"price_bars_1d_p{add_months(utc(now.year, now.month), i):%Y%m%d}" for i in range(3)]
    assert sorted(report.created) == ["price_bars_1d_p20190501", "price_bars_1d_p20190601", *ahead]
    assert conn.execute(WHERE_ROWS_ARE.format(table="price_bars")).fetchall() == [
        ("price_bars_1d_p20190501", 1),
        ("price_bars_1d_p20190601", 2),
    ]
    assert conn.execute("SELECT * FROM price_bars ORDER BY ts").fetchall() == before
    # The moved partitions have the keys and indexes of the others (ATTACH built them).
    indexes = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'price_bars_1d_p20190601'"
    ).fetchall()
    assert len(indexes) == 2
    assert ensure_partitions(conn, RetentionSettings(), datetime.now(UTC)).created == []


def test_retention_drops_whole_partitions_and_never_a_row_newer_than_it(
    conn: psycopg.Connection,
) -> None:
    retention = RetentionSettings(
        price_bars_days={"1m": 30}, indicators_days={}, dead_letters_days=30, late_bars_days=30
    )
    now = utc(2025, 3, 31)  # the 30-day cutoff is 2025-03-01 00:00, February's upper bound
    cutoff = utc(2025, 3, 1)
    last_of_february = cutoff - timedelta(microseconds=1)
    rows = [
        ("GONE", "1m", utc(2025, 2, 10)),  # a series whose every bar expires
        ("KEPT", "1m", last_of_february),
        ("KEPT", "1m", cutoff),
        ("KEPT", "1d", utc(2020, 1, 2)),  # daily bars are kept forever
    ]
    for symbol, interval, ts in rows:
        conn.execute(INSERT_BAR, (symbol, interval, ts, 1, 1, 1, 1, 1.0, f"{symbol}{ts}"))
    for received, offset in ((cutoff - timedelta(seconds=1), 0), (cutoff, 1)):
        conn.execute(
            "INSERT INTO dead_letters (service, topic, kafka_partition, kafka_offset, reason,"
            " received_at) VALUES ('s', 't', 0, %s, 'r', %s)",
            (offset, received),
        )
        conn.execute(
            "INSERT INTO late_bars (consumer_group, symbol, interval, ts, newest_ts, event_id,"
            " received_at) VALUES ('g', 'X', '1d', %s, %s, %s, %s)",
            (received, received, f"e{offset}", received),
        )
    ensure_partitions(conn, retention, now)

    # One microsecond earlier, February still holds a row newer than the cutoff: kept.
    early = apply_retention(conn, retention, now - timedelta(microseconds=1))
    assert "price_bars_1m_p20250201" not in early.removed
    assert conn.execute("SELECT count(*) FROM price_bars").fetchone()[0] == 4

    report = apply_retention(conn, retention, now)
    assert "price_bars_1m_p20250201" in report.removed
    assert all(name.startswith("price_bars_1m_") for name in report.removed)
    assert not report.skipped
    assert conn.execute(
        "SELECT symbol, interval, ts FROM price_bars ORDER BY interval, ts"
    ).fetchall() == [("KEPT", "1d", utc(2020, 1, 2)), ("KEPT", "1m", cutoff)]
    # Rows of the unpartitioned tables: the one received before the cutoff went in the first
    # round, the one received at the cutoff stays.
    assert early.deleted_rows == {"dead_letters": 1, "late_bars": 1}
    assert report.deleted_rows == {"dead_letters": 0, "late_bars": 0}
    assert conn.execute("SELECT received_at FROM dead_letters").fetchall() == [(cutoff,)]
    assert conn.execute("SELECT received_at FROM late_bars").fetchall() == [(cutoff,)]
    # latest_bars forgets the series retention emptied, and shows the others' newest bars.
    assert conn.execute("SELECT symbol, interval, ts FROM latest_bars").fetchall() == [
        ("KEPT", "1d", utc(2020, 1, 2)),
        ("KEPT", "1m", cutoff),
    ]


def test_detach_keeps_the_expired_partition_as_a_table(conn: psycopg.Connection) -> None:
    retention = RetentionSettings(price_bars_days={"1m": 30}, action="detach")
    conn.execute(INSERT_BAR, ("OLD", "1m", utc(2025, 1, 5), 1, 1, 1, 1, 1.0, "old"))
    ensure_partitions(conn, retention, utc(2025, 3, 31))
    assert apply_retention(conn, retention, utc(2025, 3, 31)).removed == ["price_bars_1m_p20250101"]
    assert conn.execute("SELECT count(*) FROM price_bars").fetchone()[0] == 0
    assert conn.execute("SELECT symbol FROM price_bars_1m_p20250101_detached").fetchall() == [
        ("OLD",)
    ]


def test_upkeep_gives_up_a_step_on_a_held_lock_and_does_it_next_round(
    conn: psycopg.Connection, pg_settings: PostgresSettings
) -> None:
    retention = RetentionSettings(price_bars_days={"1m": 30}, lock_timeout_ms=100)
    conn.execute(INSERT_BAR, ("OLD", "1m", utc(2025, 1, 5), 1, 1, 1, 1, 1.0, "old"))
    ensure_partitions(conn, retention, utc(2025, 3, 31))
    with psycopg.connect(pg_settings.conninfo()) as reader:
        # A long read of the 1-minute bars holds its lock until this transaction ends.
        reader.execute("SELECT count(*) FROM price_bars WHERE interval = '1m'").fetchone()
        held = apply_retention(conn, retention, utc(2025, 3, 31))
        assert held.skipped == ["price_bars_1m_p20250101"] and held.removed == []
        assert conn.execute("SELECT symbol FROM price_bars").fetchall() == [("OLD",)]
        reader.rollback()
    done = apply_retention(conn, retention, utc(2025, 3, 31))
    assert done.removed == ["price_bars_1m_p20250101"] and not done.skipped


def test_latest_bars_follows_a_hand_made_delete(conn: psycopg.Connection) -> None:
    for minute in range(3):
        ts = utc(2024, 6, 3, 15, minute)
        conn.execute(INSERT_BAR, ("AAPL", "1m", ts, 1, 1, 1, 1 + minute, 1.0, f"m{minute}"))
    assert conn.execute("SELECT ts, close FROM latest_bars").fetchall() == [
        (utc(2024, 6, 3, 15, 2), 3.0)
    ]
    conn.execute("DELETE FROM price_bars WHERE ts >= %s", (utc(2024, 6, 3, 15, 1),))
    assert conn.execute("SELECT ts, close FROM latest_bars").fetchall() == [
        (utc(2024, 6, 3, 15, 0), 1.0)
    ]
    conn.execute("DELETE FROM price_bars")
    assert conn.execute("SELECT count(*) FROM latest_bars").fetchone()[0] == 0


def test_storage_compares_a_batch_by_key_probes_not_a_scan_of_every_partition(
    conn: psycopg.Connection,
) -> None:
    # A plain join of the staged batch to partitioned price_bars is planned as a hash of every
    # partition (1.7 s per 5,000 bars into 2 million rows); the storage query probes by key.
    conn.execute(
        "INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, volume, source,"
        " event_id) SELECT 'S' || s, '1m', timestamptz '2024-01-02 00:00+00' + g * interval"
        " '1 minute', 1, 1, 1, 1, 1, 'test', s || '-' || g"
        " FROM generate_series(1, 20) s, generate_series(1, 1000) g"
    )
    ensure_partitions(conn, RetentionSettings(), utc(2024, 1, 2))
    conn.execute("ANALYZE price_bars")
    with conn.transaction():
        conn.execute(CREATE_STAGING)
        conn.execute(
            "INSERT INTO staging_bars SELECT symbol, interval, ts, open, high, low, close,"
            " adj_close, volume, split_basis, source, event_id, 0, 0 FROM price_bars"
            " WHERE ts > '2024-01-02 12:40+00'"
        )
        (document,) = conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + COMPARE_WITH_STORED
        ).fetchone()
    nodes = [n for n in plan_nodes(document[0]["Plan"]) if n.get("Actual Loops", 0) > 0]
    probes = [n for n in nodes if n.get("Relation Name", "").startswith("price_bars")]
    assert probes
    assert all(n["Actual Rows"] <= 1 and not n.get("Rows Removed by Filter") for n in probes)


def bar_records(month: datetime, batch: int, size: int) -> list[Record]:
    """`size` new minute bars of one batch, over 50 symbols, inside `month`."""
    records = []
    for n in range(size):
        ts = month + timedelta(minutes=batch * size + n)
        bar = Bar(
            event_id=f"{batch}-{n}", source="test", symbol=f"S{n % 50}", interval="1m", ts=ts,
            open=1.0, high=1.0, low=1.0, close=1.0, adj_close=None, volume=1, fetched_at=ts,
        )  # fmt: skip
        records.append(Record("t.market.bars", 0, batch * size + n, None, bar, 0))
    return records


def test_a_new_month_is_probed_by_key_on_a_connection_that_wrote_the_previous_one(
    pg_settings: PostgresSettings, conn: psycopg.Connection
) -> None:
    """The pool's connections write batch after batch. A month partition made ahead by upkeep
    and analyzed while empty must not be scanned once it fills: a plan cached on the connection
    while it was empty reads the month for every bar (p99 30 s at 2,000 bars/s, bench.ingest)."""
    this_month, next_month = utc(2024, 1, 2), utc(2024, 2, 1)
    conn.execute(  # a table written to gets its months ahead from upkeep
        "INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, volume, source,"
        " event_id) VALUES ('X', '1m', %s, 1, 1, 1, 1, 1, 'test', 'x')",
        (this_month,),
    )
    ensure_partitions(conn, RetentionSettings(), this_month)
    conn.execute("ANALYZE price_bars")  # the months ahead: analyzed while empty
    with psycopg.connect(pg_settings.conninfo()) as writer:
        writer.execute(CREATE_STAGING)
        writer.commit()
        for batch in range(6):  # psycopg prepares a statement from its 5th execution on
            with writer.transaction():
                write_bars(writer, bar_records(this_month, batch, 2000))
        for batch in range(8):
            with writer.transaction():
                write_bars(writer, bar_records(next_month, batch, 2000))
                # This transaction's own counts: how many rows of the month scans read.
                read_by_scans = writer.execute(
                    "SELECT seq_tup_read FROM pg_stat_xact_user_tables "
                    "WHERE relid = 'price_bars_1m_p20240201'::regclass"
                ).fetchone()[0]
    assert conn.execute("SELECT count(*) FROM price_bars").fetchone()[0] == 1 + 14 * 2000
    assert partition_name_of(conn, next_month) == "price_bars_1m_p20240201"
    # The last batch met 14,000 bars in the month: probed by key, not read 2,000 times over.
    assert read_by_scans == 0


def partition_name_of(conn: psycopg.Connection, ts: datetime) -> str:
    (name,) = conn.execute(
        "SELECT tableoid::regclass::text FROM price_bars WHERE ts = %s LIMIT 1", (ts,)
    ).fetchone()
    return name


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)
