"""Instrument snapshots from recorded Yahoo quotes and Finnhub's profile2, NULL where unknown."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from producer.market.service import poll_once
from shared.kafka import Topics
from shared.settings import DataSource, MarketSettings, Settings, SourceSettings
from tests.integration.bar_stream import end_offsets
from tests.integration.storage_thread import fast_consumer, storage_running, wait_stored

FILES = [
    "yahoo/quote_v7_AAPL.json",
    "yahoo/quote_v7_AAPL_MSFT.json",
    "yahoo/chart_MSFT_1d_2021-02-01_2022-01-28_dividends.json",
    "finnhub/stock_profile2_AAPL.json",
]


def expected(quote: dict[str, Any], industry: str | None) -> tuple[Any, ...]:
    """From the newest recorded quote (v7 dividendYield is in percent) and profile2."""
    return (
        quote["symbol"],
        quote["longName"],
        quote["fullExchangeName"],
        quote["currency"],
        None,  # sector: neither Yahoo's quote nor Finnhub's profile2 gives one
        industry,
        float(quote["marketCap"]),
        quote["trailingPE"],
        quote["dividendYield"] / 100,
        quote["fiftyTwoWeekHigh"],
        quote["fiftyTwoWeekLow"],
    )


def test_daily_snapshot_per_symbol_from_quote_and_profile(
    settings_factory: Callable[..., Settings], topics: Topics, recordings: Path, tmp_path: Path
) -> None:
    recorded = tmp_path / "recorded"
    for name in FILES:
        (recorded / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(recordings / name, recorded / name)
    settings = settings_factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=recorded),
        market=MarketSettings(
            symbols=["AAPL", "MSFT", "NVDA"], interval="1d", requests_per_minute=600
        ),
        consumer=fast_consumer(),
    )
    newest = json.loads((recordings / FILES[1]).read_text())["quoteResponse"]["result"]
    quotes = {q["symbol"]: q for q in newest}
    profile = json.loads((recordings / FILES[3]).read_text())
    with storage_running(settings):
        poll_once(settings)
        wait_stored(settings, topics.market_instruments)
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            rows = conn.execute(
                "SELECT symbol, name, exchange, currency, sector, industry, market_cap, pe_ratio,"
                " dividend_yield, high_52w, low_52w FROM instruments ORDER BY symbol"
            ).fetchall()
        # NVDA: no quote and no profile recorded, so no row rather than an invented one.
        assert rows == [
            expected(quotes["AAPL"], profile["finnhubIndustry"]),
            expected(quotes["MSFT"], None),
        ]
        # A daily snapshot: polling again the same day publishes none.
        before = end_offsets(settings.kafka, topics.market_instruments)
        poll_once(settings)
        assert end_offsets(settings.kafka, topics.market_instruments) == before
