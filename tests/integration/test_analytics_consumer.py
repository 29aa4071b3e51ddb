"""The analytics consumer on real Kafka + Postgres: TA-Lib values, duplicates, late bars."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import talib

from analytics.indicators import annualization_factor
from producer.market.service import poll_once
from shared.kafka import Topics
from shared.schemas import Bar
from shared.settings import DataSource, MarketSettings, Settings, SourceSettings
from tests.integration.analytics_run import (
    VALUE_COLUMNS,
    analytics_running,
    stored_indicators,
    wait_analyzed,
)
from tests.integration.bar_stream import publish, publish_bars
from tests.integration.storage_thread import fast_consumer, storage_running, wait_stored

DAILY_FILES = [
    "chart_AAPL_1d_2020.json",
    "chart_AMZN_1d_2020.json",
    "chart_GOOG_1d_2020.json",
    "chart_QQQ_1d_2020.json",
    "chart_MSFT_1d_6mo_2025-04-30_2025-10-29.json",
]


def _talib_columns(closes: np.ndarray, annualization: float) -> dict[str, np.ndarray]:
    """Every indicators column computed independently: TA-Lib, and pandas for volatility."""
    macd, signal, hist = talib.MACD(closes, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(closes, 20, 2.0, 2.0, matype=0)
    log_returns = np.log(pd.Series(closes)).diff()
    return {
        "sma_fast": talib.SMA(closes, 20),
        "sma_slow": talib.SMA(closes, 50),
        "ema_fast": talib.EMA(closes, 12),
        "ema_slow": talib.EMA(closes, 26),
        "rsi": talib.RSI(closes, 14),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_lower": lower,
        "bb_middle": middle,
        "bb_upper": upper,
        "volatility": (log_returns.rolling(20).std(ddof=1) * annualization).to_numpy(),
    }


def test_recorded_bars_give_talib_values_and_duplicates_and_late_bars_change_nothing(
    settings_factory: Callable[..., Settings], topics: Topics, recordings: Path, tmp_path: Path
) -> None:
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    for name in DAILY_FILES:
        shutil.copy(recordings / "yahoo" / name, recorded / name)
    settings = settings_factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=recorded),
        market=MarketSettings(
            symbols=["AAPL", "AMZN", "GOOG", "QQQ", "MSFT"], interval="1d", requests_per_minute=600
        ),
        consumer=fast_consumer(),
    )
    with storage_running(settings), analytics_running(settings):
        report = poll_once(settings)
        assert not report.failed and report.published > 500
        wait_stored(settings, topics.market_bars)
        wait_analyzed(settings)
        rows = stored_indicators(settings)
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            bars = conn.execute(
                "SELECT symbol, ts, close FROM price_bars ORDER BY symbol, ts"
            ).fetchall()
        assert len(rows) == len(bars)

        annualization = annualization_factor("1d")
        for symbol in settings.market.symbols:
            series = [(ts, close) for s, ts, close in bars if s == symbol]
            closes = np.asarray([close for _, close in series])
            expected = _talib_columns(closes, annualization)
            for column_index, column in enumerate(VALUE_COLUMNS):
                for i, (ts, close) in enumerate(series):
                    ours = rows[(symbol, "1d", ts)][column_index]
                    theirs = float(expected[column][i])
                    if math.isnan(theirs):  # TA-Lib's warm-up: ours is NULL there too
                        assert ours is None, f"{symbol} {ts} {column}: {ours} during warm-up"
                        continue
                    assert ours is not None, f"{symbol} {ts} {column}: NULL after warm-up"
                    assert abs(ours - theirs) <= 1e-9 * max(abs(theirs), close), (
                        f"{symbol} {ts} {column}: {ours} vs TA-Lib {theirs}"
                    )

        # The same history again (fresh producer state) is all duplicates; a bar older than a
        # series' newest that was never fed is late: kept in late_bars, not fed.
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            conn.execute("DELETE FROM producer_state")
        again = poll_once(settings)
        assert again.published == report.published
        first_amzn = min(ts for s, ts, _ in bars if s == "AMZN")
        late = Bar(
            event_id="late-amzn-1",
            source="test",
            symbol="AMZN",
            interval="1d",
            ts=first_amzn - timedelta(days=1),
            open=90.0,
            high=91.0,
            low=89.0,
            close=90.5,
            adj_close=None,
            volume=1000,
            fetched_at=first_amzn,
        )
        publish_bars(settings.kafka, topics.market_bars, [late])
        # Bad input is rejected with a reason in the batch's transaction, never fed.
        publish(settings.kafka, topics.market_bars, [(b"AMZN", b"{not json")])
        wait_analyzed(settings)
        assert stored_indicators(settings) == rows
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            late_rows = conn.execute(
                "SELECT consumer_group, symbol, ts, event_id FROM late_bars"
            ).fetchall()
            letters = conn.execute(
                "SELECT key, payload FROM dead_letters WHERE service = 'analytics.consumer'"
            ).fetchall()
        assert late_rows == [(settings.consumer.group_analytics, "AMZN", late.ts, "late-amzn-1")]
        assert letters == [(b"AMZN", b"{not json")]
