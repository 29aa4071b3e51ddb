"""Published reference tables (StockCharts via bukosabino/ta) at their precision and definition."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from analytics.indicators import RSI, Bollinger

# Classic Wilder RSI(14) published by StockCharts, 05-Jan..01-Feb-2010 (recordings/PROVENANCE.md).
STOCKCHARTS_RSI = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71,
                   50.42, 39.99, 41.46, 41.87, 45.46, 37.30, 33.08, 37.77]  # fmt: skip


Table = Callable[[str], list[dict[str, str]]]


@pytest.fixture(scope="module")
def table(recordings: Path) -> Table:
    """The rows of a reference table in recordings/indicator_reference/."""

    def rows(name: str) -> list[dict[str, str]]:
        with (recordings / "indicator_reference" / name).open() as f:
            return list(csv.DictReader(f))

    return rows


def test_bollinger_matches_table(table: Table) -> None:
    rows = table("ta_cs-bbands.csv")
    bands = Bollinger(20, 2.0)
    checked = 0
    for row in rows:
        value = bands.update(float(row["Close"]))
        if not row["MiddleBand"]:
            assert value is None
            continue
        assert value is not None
        for ours, column in ((value.middle, "MiddleBand"), (value.upper, "HighBand"),
                             (value.lower, "LowBand")):  # fmt: skip
            assert ours == pytest.approx(float(row[column]), abs=1e-5), column
        checked += 1
    assert checked > 10


def test_rsi_matches_stockcharts_wilder(table: Table) -> None:
    rows = table("ta_cs-rsi.csv")
    rsi = RSI(14)
    values = [rsi.update(float(row["Close"])) for row in rows]
    got = [round(v, 2) for v in values if v is not None][: len(STOCKCHARTS_RSI)]
    assert got == STOCKCHARTS_RSI


def test_macd_table_matches_first_close_seeded_oracle(table: Table) -> None:
    """The table seeds its EMAs with the first close; we check it only against such an oracle."""
    rows = table("ta_cs-macd.csv")
    closes = [float(r["Close"]) for r in rows]

    def ewm(xs: list[float], n: int) -> list[float]:
        k, out = 2 / (n + 1), [xs[0]]
        for x in xs[1:]:
            out.append(out[-1] + k * (x - out[-1]))
        return out

    short, long = ewm(closes, 12), ewm(closes, 26)
    for i, row in enumerate(rows):
        if row.get("short_ema"):
            assert short[i] == pytest.approx(float(row["short_ema"]), rel=1e-6)
        if row.get("long_ema"):
            assert long[i] == pytest.approx(float(row["long_ema"]), rel=1e-6)
