"""Every README cookbook recipe (docs/cookbook/*.sql, the one copy) on real PostgreSQL over the
known replayed data, each against rows computed in Python from that data."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shared.settings import PostgresSettings, project_root
from tests.integration.known_data import KnownData, load_known_data

COOKBOOK = project_root() / "docs" / "cookbook"
# psql's :'name' variables become psycopg parameters: one file serves both.
PSQL_VARIABLE = re.compile(r":'([a-z_]+)'")


def recipe(name: str) -> str:
    text = (COOKBOOK / f"{name}.sql").read_text().replace("%", "%%")
    return PSQL_VARIABLE.sub(r"%(\1)s", text)


@pytest.fixture
def known(pg_settings: PostgresSettings, recordings: Path) -> KnownData:
    return load_known_data(pg_settings.conninfo(), recordings)


@pytest.fixture
def conn(pg_settings: PostgresSettings, known: KnownData) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_settings.conninfo(), autocommit=True) as connection:
        yield connection


def run(conn: psycopg.Connection, name: str, **params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(recipe(name), params).fetchall()


def close_to(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def test_every_recipe_file_is_tested_here() -> None:
    tested = set(re.findall(r'run\(\s*conn,\s*"([a-z_]+)"', Path(__file__).read_text()))
    assert tested == {path.stem for path in COOKBOOK.glob("*.sql")}


def test_latest_prices(conn: psycopg.Connection, known: KnownData) -> None:
    expected = [
        (symbol, bars[-1].ts, bars[-1].close, bars[-1].volume)
        for symbol, bars in sorted(known.bars.items())
    ]
    assert run(conn, "latest_prices", interval="1d") == expected


def test_bars_with_indicators_for_a_range(conn: psycopg.Connection, known: KnownData) -> None:
    start, end = datetime(2020, 8, 3, tzinfo=UTC), datetime(2020, 9, 1, tzinfo=UTC)
    rows = run(
        conn, "bars_with_indicators", symbol="AAPL", interval="1d", **{"from": start, "to": end}
    )
    bars = [bar for bar in known.bars["AAPL"] if start <= bar.ts < end]
    assert [row[0] for row in rows] == [bar.ts for bar in bars] and len(rows) == 21
    # IndicatorValues order: sma_fast, sma_slow, ema_fast, ema_slow, rsi, macd, macd_signal,
    # macd_hist, bb_lower, bb_middle, bb_upper, volatility.
    picked = (0, 1, 4, 5, 6, 7, 8, 9, 10, 11)
    for row, bar in zip(rows, bars, strict=True):
        values = known.indicators[bar.ts]
        assert row[1] == bar.close
        assert all(close_to(row[2 + k], values[i]) for k, i in enumerate(picked)), bar.ts
    # The split day: the close is on the new basis (about a quarter of the day before).
    assert rows[-1][1] < rows[-2][1] / 3


def test_split_adjusted_prices_are_continuous(conn: psycopg.Connection, known: KnownData) -> None:
    start, end = datetime(2020, 8, 24, tzinfo=UTC), datetime(2020, 9, 5, tzinfo=UTC)
    rows = run(conn, "adjusted_prices", symbol="AAPL", **{"from": start, "to": end})
    split_day, ratio = known.split  # type: ignore[misc]
    expected = [
        (
            bar.ts.date(),
            bar.recorded_close,
            bar.volume if bar.ts >= split_day else round(bar.volume * ratio),
            1 / ratio if bar.ts < split_day else 1.0,
        )
        for bar in known.bars["AAPL"]
        if start <= bar.ts < end
    ]
    assert len(rows) == len(expected) == 10
    for row, want in zip(rows, expected, strict=True):
        assert row[0] == want[0] and row[2] == want[2] and row[3] == want[3]
        assert math.isclose(row[1], want[1], rel_tol=1e-12)


def test_newest_forecast_with_intervals_and_quality(
    conn: psycopg.Connection, known: KnownData
) -> None:
    rows = run(conn, "newest_forecast", symbol="AAPL", interval="1d")
    newest = sorted(
        (row for row in known.forecasts if row[1] == known.newest_origin),
        key=lambda row: (row[4], row[2]),
    )
    assert [row[:9] for row in rows] == [
        (f[1], f[2], f[3], f[4], f[5], f[7], f[8], f[9], f[10]) for f in newest
    ]
    for row in rows:
        model, step = row[3], row[1]
        (error,) = [e for e in known.errors if e[3] == model and e[2] == step]
        (naive,) = [e for e in known.errors if e[3] == "naive" and e[2] == step]
        assert row[9] == 1  # one scored origin
        assert math.isclose(row[10], error[7]) and math.isclose(row[11], naive[7])
        assert row[12] == (1.0 if error[9] else 0.0)
        assert 0 <= row[13] <= row[12] <= row[14] <= 1


def test_active_alerts(conn: psycopg.Connection, known: KnownData) -> None:
    resolved = {alert["prev"] for alert in known.alerts if alert["prev"] is not None}
    firing = [a for a in known.alerts if a["state"] == "firing" and a["id"] not in resolved]
    expected = sorted(firing, key=lambda a: (-a["bar_ts"].timestamp(), a["symbol"]))
    rows = run(conn, "active_alerts")
    assert [(r[0], r[2], r[4], r[5]) for r in rows] == [
        (a["symbol"], a["rule"], a["bar_ts"], a["value"]) for a in expected
    ]
    assert len(rows) == 2


def test_news_for_a_symbol_with_sentiment(conn: psycopg.Connection, known: KnownData) -> None:
    since = datetime(2026, 5, 22, tzinfo=UTC)
    rows = run(conn, "news_for_symbol", symbol="AAPL", since=since)
    expected = sorted(
        (n for n in known.news if n[1] >= since), key=lambda n: (-n[1].timestamp(), n[0])
    )
    assert 0 < len(rows) == len(expected) < len(known.news)
    for row, (_id, published, headline, score) in zip(rows, expected, strict=True):
        assert (row[0], row[1]) == (published, headline)
        assert abs(float(row[3]) - score) <= 0.0005 + 1e-12
    assert run(conn, "news_for_symbol", symbol="MSFT", since=since) == []


def test_latest_macro_with_revisions(conn: psycopg.Connection, known: KnownData) -> None:
    newest = max(obs for obs, vintages in known.gdp.items() if vintages[-1][1] is not None)
    vintages = known.gdp[newest]
    assert run(conn, "latest_macro") == [
        (
            "GDP", "Gross Domestic Product", newest, vintages[-1][1], vintages[-1][0],
            vintages[0][1], vintages[0][0], len(vintages) - 1,
        )
    ]  # fmt: skip
    assert newest == date(2024, 7, 1) and len(vintages) == 2


@pytest.mark.parametrize("as_of", [date(2024, 11, 15), date(2024, 12, 19), date(2024, 10, 29)])
def test_gdp_as_known_on_a_date(conn: psycopg.Connection, known: KnownData, as_of: date) -> None:
    known_then = {}
    for obs, vintages in known.gdp.items():
        in_force = [v for v in vintages if v[0] <= as_of]
        if in_force and in_force[-1][1] is not None:
            known_then[obs] = in_force[-1]
    expected = [(obs, *reversed(known_then[obs])) for obs in sorted(known_then, reverse=True)]
    assert run(conn, "macro_as_of", series_id="GDP", as_of=as_of) == expected[:4]
    if as_of == date(2024, 11, 15):
        # The first estimate of 2024Q3, not the value revised on 2024-12-19.
        assert expected[0] == (date(2024, 7, 1), 29349.924, date(2024, 10, 30))
    if as_of == date(2024, 10, 29):
        assert expected == []
