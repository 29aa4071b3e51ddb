"""The marks the chart and the dashboard draw over a series, read by analytics/series_marks.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from analytics.series_marks import read_alert_marks, read_forecast, read_splits
from shared.settings import PostgresSettings

DAY1 = datetime(2024, 6, 3, tzinfo=UTC)
SPLIT_DAY = DAY1 + timedelta(days=3)


@pytest.fixture
def conn(pg_settings: PostgresSettings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_settings.conninfo(), autocommit=True) as connection:
        yield connection


def test_a_forecast_made_before_a_split_is_drawn_on_the_newest_basis(
    conn: psycopg.Connection,
) -> None:
    """Bars are drawn split-adjusted; a cone whose origin predates a 3:1 split must be too
    (the dashboard drew it on the old basis: three times too high beside the adjusted bars)."""
    conn.execute(
        "INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, volume, source,"
        " event_id) VALUES ('ACME', '1d', %s, 300, 300, 300, 300, 10, 'test', 'a')",
        (DAY1,),
    )
    conn.execute(
        "INSERT INTO corporate_actions (symbol, ts, kind, ratio, source)"
        " VALUES ('ACME', %s, 'split', 3, 'test')",
        (SPLIT_DAY,),
    )
    conn.execute(
        "INSERT INTO forecast_origins (symbol, interval, origin_ts, outcome, searched,"
        " window_bars) VALUES ('ACME', '1d', %s, 'fitted', true, 60)",
        (DAY1,),
    )
    conn.execute(
        "INSERT INTO forecasts (symbol, interval, origin_ts, step, target_ts, model, median,"
        " mean, lo80, hi80, lo95, hi95) VALUES"
        " ('ACME', '1d', %s, 1, %s, 'arima', 300, 300, 270, 330, 240, 360)",
        (DAY1, DAY1 + timedelta(days=1)),
    )
    (step,) = read_forecast(conn, "ACME", "1d")
    assert (step.origin_ts, step.step) == (DAY1, 1)
    assert (step.median, step.lo80, step.hi80, step.lo95, step.hi95) == (100, 90, 110, 80, 120)
    assert [(s.ts, s.ratio) for s in read_splits(conn, "ACME", DAY1)] == [(SPLIT_DAY, 3.0)]
    assert read_splits(conn, "ACME", SPLIT_DAY + timedelta(days=1)) == []
    assert read_alert_marks(conn, "ACME", "1d", DAY1) == []
