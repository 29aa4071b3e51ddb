"""The read-side SQL of 0004 on real PostgreSQL: session dates, latest_bars, macro vintages,
split-adjusted indicators, readable dead letters, and the migration over existing rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from db.migrate import discover, migrate
from shared.settings import PostgresSettings

MIGRATION = next(m for m in discover() if m.path.name == "0004_trusted_sql.sql")

INSERT_BAR = """
INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, adj_close, volume,
                        split_basis, source, event_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'test', %s)
"""
INSERT_OBSERVATION = """
INSERT INTO macro_observations (series_id, obs_date, realtime_start, value) VALUES (%s, %s, %s, %s)
"""
INSERT_INDICATORS = """
INSERT INTO indicators (symbol, interval, ts, sma_fast, sma_slow, ema_fast, ema_slow, rsi, macd,
                        macd_signal, macd_hist, bb_lower, bb_middle, bb_upper, volatility,
                        params_id, split_basis)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
ADJUSTED_BARS = sql.SQL(
    "SELECT symbol, interval, ts, open, high, low, close, adj_close, volume, split_basis"
    " FROM {view} ORDER BY symbol, ts"
)
# Series enough that a scan of price_bars would be the planner's choice for a DISTINCT ON.
GENERATE_BARS = """
INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, volume, source, event_id)
SELECT 'G' || lpad(s::text, 3, '0'), iv, timestamptz '2020-01-01 00:00+00' + g * interval '1 day',
       g, g, g, g, g, 'test', s || iv || g
FROM generate_series(1, %s) s, unnest(ARRAY['1d', '1m']) iv, generate_series(1, %s) g
"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def bar(
    symbol: str,
    interval: str,
    ts: datetime,
    close: float,
    volume: int = 1000,
    split_basis: float = 1.0,
) -> tuple[Any, ...]:
    event_id = f"{symbol}-{interval}-{ts.isoformat()}"
    return (symbol, interval, ts, close, close, close, close, close, volume, split_basis, event_id)


@pytest.fixture
def conn(pg_settings: PostgresSettings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_settings.conninfo(), autocommit=True) as connection:
        yield connection


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def explain(conn: psycopg.Connection, query: str) -> list[dict[str, Any]]:
    (document,) = conn.execute("EXPLAIN (FORMAT JSON) " + query).fetchone()
    return list(plan_nodes(document[0]["Plan"]))


def index_roots(conn: psycopg.Connection, nodes: list[dict[str, Any]]) -> set[str]:
    """The indexes a plan uses, each named by its partitioned root index (0008 partitions the
    tables, so a plan names the index of one partition: price_bars_1d_p20240601_pkey)."""
    names = [n["Index Name"] for n in nodes if n.get("Index Name")]
    rows = conn.execute(
        "SELECT pg_partition_root(to_regclass(name))::text FROM unnest(%s::text[]) AS name",
        (names,),
    ).fetchall()
    return {row[0] for row in rows}


def test_a_new_connection_is_in_utc(
    pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGTZ", raising=False)  # libpq would send it as the session's TimeZone
    with psycopg.connect(pg_settings.conninfo()) as conn:
        (zone,) = conn.execute("SHOW TimeZone").fetchone()
    # The local stack sets 'UTC'; a Postgres image initialised without TZ says 'Etc/UTC'.
    assert zone in ("UTC", "Etc/UTC")


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo", "UTC"])
def test_a_daily_bar_keeps_its_session_date_in_every_client_time_zone(
    conn: psycopg.Connection, zone: str
) -> None:
    conn.cursor().executemany(
        INSERT_BAR,
        [
            bar("AAPL", "1d", utc(2024, 6, 3), 194.0),
            bar("MSFT", "1d", utc(2024, 6, 3), 413.5),
            bar("AAPL", "1d", utc(2024, 6, 4), 194.4),
            bar("AAPL", "1m", utc(2024, 6, 3, 13, 30), 193.9),  # intraday: not a daily bar
        ],
    )
    conn.execute(sql.SQL("SET TIME ZONE {}").format(sql.Literal(zone)))
    rows = conn.execute(
        "SELECT symbol, session_date, close FROM daily_bars ORDER BY session_date, symbol"
    ).fetchall()
    assert rows == [
        ("AAPL", date(2024, 6, 3), 194.0),
        ("MSFT", date(2024, 6, 3), 413.5),
        ("AAPL", date(2024, 6, 4), 194.4),
    ]
    on_one_date = conn.execute(
        "SELECT symbol, close FROM daily_bars WHERE session_date = %s ORDER BY symbol",
        (date(2024, 6, 3),),
    ).fetchall()
    assert on_one_date == [("AAPL", 194.0), ("MSFT", 413.5)]
    # What the README's old `ts::date` said: the session's local date of 00:00 UTC.
    (naive,) = conn.execute("SELECT ts::date FROM price_bars WHERE symbol = 'MSFT'").fetchone()
    assert naive == (date(2024, 6, 2) if zone == "America/New_York" else date(2024, 6, 3))


def test_date_queries_can_use_their_indexes(conn: psycopg.Connection) -> None:
    # Few rows here: forbid the seq scan so the plan shows whether an index matches at all.
    conn.execute("SET enable_seqscan = off")
    on_one_date = explain(conn, "SELECT * FROM daily_bars WHERE session_date = '2024-06-03'")
    assert "price_bars_daily_session_date" in index_roots(conn, on_one_date)
    newest_news = explain(conn, "SELECT * FROM news_articles ORDER BY published_at DESC LIMIT 10")
    assert "news_articles_published_at" in {n.get("Index Name") for n in newest_news}


def test_latest_bars_is_the_newest_bar_per_series_by_index(conn: psycopg.Connection) -> None:
    conn.cursor().executemany(
        INSERT_BAR,
        [
            bar("AAPL", "1d", utc(2024, 6, 3), 194.0),
            bar("AAPL", "1d", utc(2024, 6, 4), 194.4),
            bar("AAPL", "1m", utc(2024, 6, 4, 19, 58), 194.1),
            bar("AAPL", "1m", utc(2024, 6, 4, 19, 59), 194.3),
            bar("MSFT", "1d", utc(2024, 5, 31), 415.1),
            bar("ZZZZ", "5m", utc(2023, 1, 2, 15, 0), 1.5),
        ],
    )
    conn.execute(GENERATE_BARS, (100, 200))  # 200 series more, 40,000 bars
    conn.execute("ANALYZE price_bars")
    rows = conn.execute("SELECT symbol, interval, ts, close FROM latest_bars").fetchall()
    newest_generated = utc(2020, 1, 1) + timedelta(days=200)
    assert rows == [
        ("AAPL", "1d", utc(2024, 6, 4), 194.4),
        ("AAPL", "1m", utc(2024, 6, 4, 19, 59), 194.3),
        *[
            (f"G{s:03d}", interval, newest_generated, 200.0)
            for s in range(1, 101)
            for interval in ("1d", "1m")
        ],
        ("MSFT", "1d", utc(2024, 5, 31), 415.1),
        ("ZZZZ", "5m", utc(2023, 1, 2, 15, 0), 1.5),
    ]
    every_column = conn.execute("SELECT * FROM latest_bars").fetchall()
    reference = conn.execute(
        "SELECT DISTINCT ON (symbol, interval) symbol, interval, ts, open, high, low, close,"
        " adj_close, volume, split_basis, source, ingested_at"
        " FROM price_bars ORDER BY symbol, interval, ts DESC"
    ).fetchall()
    assert every_column == reference

    # Executed nodes only (the partitions pruned at run time never run): each probe of a
    # price_bars partition reads the one row it returns, never a scan of the series' bars (a
    # one-row partition may be read by a Seq Scan: that is still one row).
    (document,) = conn.execute(
        "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM latest_bars"
    ).fetchone()
    nodes = [n for n in plan_nodes(document[0]["Plan"]) if n.get("Actual Loops", 0) > 0]
    probes = [n for n in nodes if n.get("Relation Name", "").startswith("price_bars")]
    assert probes
    assert all(n["Actual Rows"] <= 1 and not n.get("Rows Removed by Filter") for n in probes)
    assert index_roots(conn, nodes) >= {"price_bars_pkey"}


def test_latest_macro_skips_missing_values(conn: psycopg.Connection) -> None:
    conn.cursor().executemany(
        INSERT_OBSERVATION,
        [
            ("GDP", date(2024, 1, 1), date(2024, 2, 1), 100.0),
            ("GDP", date(2024, 4, 1), date(2024, 5, 1), 101.0),
            ("GDP", date(2024, 7, 1), date(2024, 8, 1), None),  # listed, no value yet
            # A value later withdrawn: its current vintage is ".", so it is skipped too.
            ("UNRATE", date(2024, 5, 1), date(2024, 6, 7), 4.0),
            ("UNRATE", date(2024, 6, 1), date(2024, 7, 5), 4.1),
            ("UNRATE", date(2024, 6, 1), date(2024, 7, 10), None),
            ("EMPTY", date(2024, 1, 1), date(2024, 1, 2), None),
        ],
    )
    conn.execute("INSERT INTO macro_series (series_id, title, units) VALUES ('GDP', 'GDP', 'Bil')")
    rows = conn.execute(
        "SELECT series_id, title, units, obs_date, realtime_start, value"
        " FROM latest_macro ORDER BY series_id"
    ).fetchall()
    assert rows == [
        ("GDP", "GDP", "Bil", date(2024, 4, 1), date(2024, 5, 1), 101.0),
        ("UNRATE", None, None, date(2024, 5, 1), date(2024, 6, 7), 4.0),
    ]


CPI_VINTAGES = [
    ("CPI", date(2024, 1, 1), date(2024, 2, 10), 300.0),
    ("CPI", date(2024, 1, 1), date(2024, 3, 10), 300.5),
    ("CPI", date(2024, 1, 1), date(2024, 4, 10), 301.0),
    ("CPI", date(2024, 2, 1), date(2024, 3, 10), 302.0),
    ("CPI", date(2024, 3, 1), date(2024, 4, 10), None),
    ("OTHER", date(2024, 1, 1), date(2024, 1, 5), 7.0),
]


def test_macro_current_is_the_newest_vintage_of_each_date(conn: psycopg.Connection) -> None:
    conn.cursor().executemany(INSERT_OBSERVATION, CPI_VINTAGES)
    rows = conn.execute(
        "SELECT obs_date, value, realtime_start FROM macro_current"
        " WHERE series_id = 'CPI' ORDER BY obs_date"
    ).fetchall()
    assert rows == [
        (date(2024, 1, 1), 301.0, date(2024, 4, 10)),
        (date(2024, 2, 1), 302.0, date(2024, 3, 10)),
        (date(2024, 3, 1), None, date(2024, 4, 10)),
    ]


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        pytest.param(date(2024, 2, 9), [], id="before-the-first-vintage"),
        pytest.param(
            date(2024, 2, 10), [(date(2024, 1, 1), 300.0, date(2024, 2, 10))], id="first-day"
        ),
        pytest.param(
            date(2024, 3, 15),
            [
                (date(2024, 1, 1), 300.5, date(2024, 3, 10)),
                (date(2024, 2, 1), 302.0, date(2024, 3, 10)),
            ],
            id="between-revisions",
        ),
        pytest.param(
            date(2024, 12, 31),
            [
                (date(2024, 1, 1), 301.0, date(2024, 4, 10)),
                (date(2024, 2, 1), 302.0, date(2024, 3, 10)),
                (date(2024, 3, 1), None, date(2024, 4, 10)),
            ],
            id="after-every-revision",
        ),
    ],
)
def test_macro_as_of_is_the_vintage_in_force_that_day(
    conn: psycopg.Connection, as_of: date, expected: list[tuple[Any, ...]]
) -> None:
    conn.cursor().executemany(INSERT_OBSERVATION, CPI_VINTAGES)
    rows = conn.execute(
        "SELECT obs_date, value, realtime_start FROM macro_as_of(%s, %s) ORDER BY obs_date",
        ("CPI", as_of),
    ).fetchall()
    assert rows == expected


def test_bars_with_indicators_adjusted_rescales_bars_before_a_split(
    conn: psycopg.Connection,
) -> None:
    # NVDA 4:1 on 2024-06-10: bars fetched before it are on basis 1, after it on basis 4.
    conn.cursor().executemany(
        INSERT_BAR,
        [
            bar("NVDA", "1d", utc(2024, 6, 6), 1200.0, volume=1000),
            bar("NVDA", "1d", utc(2024, 6, 7), 1208.0, volume=1000),
            bar("NVDA", "1d", utc(2024, 6, 10), 121.0, volume=4000, split_basis=4.0),
            bar("NVDA", "1d", utc(2024, 6, 11), 122.0, volume=4000, split_basis=4.0),
            bar("AAPL", "1d", utc(2024, 6, 7), 196.9),
        ],
    )
    conn.execute(
        "INSERT INTO corporate_actions (symbol, ts, kind, ratio, source)"
        " VALUES ('NVDA', %s, 'split', 4.0, 'test')",
        (utc(2024, 6, 10),),
    )
    (params_id,) = conn.execute(
        "INSERT INTO indicator_params (params) VALUES ('{}') RETURNING params_id"
    ).fetchone()
    # Each row in its bar's prices (as the analytics consumer writes them): every price-valued
    # column 1196 before the split, 120 after; RSI 55 and volatility 0.4 are scale-free.
    # A row states its basis (NULL: written before the column existed, on its bar's basis); one
    # rewritten by analytics.recompute after the split is already on the newest basis (299 on
    # basis 4) and must not be scaled again.
    indicators = [
        (symbol, "1d", ts, *[price] * 4, 55.0, *[price] * 3, *[price] * 3, 0.4, params_id, basis)
        for symbol, ts, price, basis in [
            ("NVDA", utc(2024, 6, 6), 1196.0, None),
            ("NVDA", utc(2024, 6, 7), 299.0, 4.0),
            ("NVDA", utc(2024, 6, 10), 120.0, 4.0),
            ("AAPL", utc(2024, 6, 7), 190.0, 1.0),
        ]
    ]  # NVDA 2024-06-11: no indicators row yet
    conn.cursor().executemany(INSERT_INDICATORS, indicators)

    adjusted_bars = conn.execute(
        ADJUSTED_BARS.format(view=sql.Identifier("bars_with_indicators_adjusted"))
    ).fetchall()
    assert (
        adjusted_bars
        == conn.execute(ADJUSTED_BARS.format(view=sql.Identifier("price_bars_adjusted"))).fetchall()
    )
    closes = [(r[0], r[2], r[6], r[8], r[9]) for r in adjusted_bars]
    assert closes == [
        ("AAPL", utc(2024, 6, 7), 196.9, 1000, 1.0),
        ("NVDA", utc(2024, 6, 6), 300.0, 4000, 4.0),
        ("NVDA", utc(2024, 6, 7), 302.0, 4000, 4.0),
        ("NVDA", utc(2024, 6, 10), 121.0, 4000, 4.0),
        ("NVDA", utc(2024, 6, 11), 122.0, 4000, 4.0),
    ]

    values = conn.execute(
        "SELECT symbol, ts, sma_fast, sma_slow, ema_fast, ema_slow, macd, macd_signal, macd_hist,"
        " bb_lower, bb_middle, bb_upper, rsi, volatility"
        " FROM bars_with_indicators_adjusted ORDER BY symbol, ts"
    ).fetchall()
    assert values == [
        ("AAPL", utc(2024, 6, 7), *[190.0] * 10, 55.0, 0.4),
        ("NVDA", utc(2024, 6, 6), *[299.0] * 10, 55.0, 0.4),
        ("NVDA", utc(2024, 6, 7), *[299.0] * 10, 55.0, 0.4),
        ("NVDA", utc(2024, 6, 10), *[120.0] * 10, 55.0, 0.4),
        ("NVDA", utc(2024, 6, 11), *[None] * 12),
    ]
    # Without a split the adjusted view is bars_with_indicators itself.
    aapl = sql.SQL("SELECT * FROM {view} WHERE symbol = 'AAPL'")
    assert (
        conn.execute(aapl.format(view=sql.Identifier("bars_with_indicators_adjusted"))).fetchall()
        == conn.execute(aapl.format(view=sql.Identifier("bars_with_indicators"))).fetchall()
    )


def test_dead_letters_readable_decodes_utf8_and_survives_bad_bytes(
    conn: psycopg.Connection,
) -> None:
    payloads = [
        (b"AAPL", '{"symbol": "AAPL", "note": "café"}'.encode()),
        (None, b"\xff\xfe"),  # not UTF-8
        (b"\xc3", b"a\x00b"),  # a cut multi-byte key; NUL, which text cannot hold
    ]
    conn.cursor().executemany(
        "INSERT INTO dead_letters (service, topic, kafka_partition, kafka_offset, key, payload,"
        " reason) VALUES ('consumer.storage', 'market.bars', 0, %s, %s, %s, 'test')",
        [(offset, key, payload) for offset, (key, payload) in enumerate(payloads)],
    )
    query = "SELECT kafka_offset, key_text, payload_text, payload FROM dead_letters_readable"
    expected = [
        (0, "AAPL", '{"symbol": "AAPL", "note": "café"}', payloads[0][1]),
        (1, None, None, b"\xff\xfe"),
        (2, None, None, b"a\x00b"),
    ]
    assert conn.execute(query + " ORDER BY kafka_offset").fetchall() == expected
    # Even where the planner is pushed to run every query in parallel: the decoder's exception
    # handler needs a subtransaction, which no process of a parallel query may start.
    force = "debug_parallel_query" if conn.info.server_version >= 160000 else "force_parallel_mode"
    conn.execute(sql.SQL("SET {} = on").format(sql.Identifier(force)))
    assert conn.execute(query + " ORDER BY kafka_offset").fetchall() == expected


def test_the_migration_applies_over_rows_of_the_previous_schema(
    pg_settings: PostgresSettings, tmp_path: Path
) -> None:
    previous = tmp_path / "previous"
    previous.mkdir()
    for migration in discover():
        if migration.version < MIGRATION.version:
            (previous / migration.path.name).write_bytes(migration.path.read_bytes())
    conninfo = pg_settings.conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    assert migrate(conninfo, previous) == sorted(p.name for p in previous.iterdir())

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.cursor().executemany(
            INSERT_BAR,
            [
                bar("AAPL", "1d", utc(2020, 8, 28), 499.2),
                bar("AAPL", "1d", utc(2020, 8, 31), 129.0, split_basis=4.0),
                bar("AAPL", "1m", utc(2020, 8, 31, 19, 59), 128.9, split_basis=4.0),
            ],
        )
        conn.execute(
            "INSERT INTO corporate_actions (symbol, ts, kind, ratio, source)"
            " VALUES ('AAPL', %s, 'split', 4.0, 'test')",
            (utc(2020, 8, 31),),
        )
        conn.cursor().executemany(
            INSERT_OBSERVATION,
            [
                ("GDP", date(2024, 4, 1), date(2024, 5, 1), 101.0),
                ("GDP", date(2024, 7, 1), date(2024, 8, 1), None),
            ],
        )
        conn.execute(
            "INSERT INTO news_articles (id, published_at, headline) VALUES ('n1', %s, 'h')",
            (utc(2024, 6, 3, 12),),
        )
        conn.execute(
            "INSERT INTO dead_letters (service, topic, kafka_partition, kafka_offset, payload,"
            " reason) VALUES ('s', 't', 0, 0, %s, 'r')",
            (b"\xff",),
        )

    applied = migrate(conninfo)
    assert applied[0] == MIGRATION.path.name
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'America/Los_Angeles'")
        assert conn.execute(
            "SELECT interval, ts, close FROM latest_bars ORDER BY interval"
        ).fetchall() == [
            ("1d", utc(2020, 8, 31), 129.0),
            ("1m", utc(2020, 8, 31, 19, 59), 128.9),
        ]
        assert conn.execute(
            "SELECT session_date, close FROM daily_bars ORDER BY ts"
        ).fetchall() == [
            (date(2020, 8, 28), 499.2),
            (date(2020, 8, 31), 129.0),
        ]
        assert conn.execute(
            "SELECT close, price_factor FROM price_bars_adjusted WHERE interval = '1d' ORDER BY ts"
        ).fetchall() == [(124.8, 0.25), (129.0, 1.0)]
        assert conn.execute("SELECT obs_date, value FROM latest_macro").fetchall() == [
            (date(2024, 4, 1), 101.0)
        ]
        assert conn.execute(
            "SELECT payload_text, payload FROM dead_letters_readable"
        ).fetchall() == [(None, b"\xff")]
