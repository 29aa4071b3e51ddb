"""MARKET_HISTORY_DAYS unset: the first backfill warms every indicator (daily: a trading year)."""

from __future__ import annotations

import bisect
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from analytics.consumer.service import configured_params
from analytics.indicators import annualization_factor
from analytics.series import SeriesState
from producer.data_source import replay_session
from producer.market.parsing import parse_chart
from producer.market.windows import live_windows
from producer.replay.index import ReplayIndex
from producer.yahoo_client import YahooClient
from shared.calendar import get_calendar
from shared.settings import (
    DEFAULT_HISTORY_DAYS,
    YAHOO_HISTORY_LIMIT_DAYS,
    AnalyticsSettings,
    MarketSettings,
)

XNYS = get_calendar("XNYS")
TRADING_YEAR = 252  # sessions
# Columns still warming up after a month of daily bars (the old default).
SLOW_TO_WARM = ("sma_slow", "ema_slow", "macd", "macd_signal")


def test_every_interval_has_a_default_within_what_yahoo_serves() -> None:
    assert set(DEFAULT_HISTORY_DAYS) == set(YAHOO_HISTORY_LIMIT_DAYS)
    for interval, days in DEFAULT_HISTORY_DAYS.items():
        assert 1 <= days <= YAHOO_HISTORY_LIMIT_DAYS[interval], interval
        assert MarketSettings(interval=interval).history_days == days  # type: ignore[arg-type]


def test_the_daily_default_holds_a_trading_year_whatever_the_day() -> None:
    first, last = date(2001, 1, 1), date(2025, 12, 31)
    sessions = [
        first + timedelta(days=n)
        for n in range((last - first).days + 1)
        if XNYS.session(first + timedelta(days=n)) is not None
    ]
    days = DEFAULT_HISTORY_DAYS["1d"]
    ends = [first + timedelta(days=days + n) for n in range((last - first).days - days)]
    fewest = min(
        bisect.bisect_right(sessions, end) - bisect.bisect_left(sessions, end - timedelta(days))
        for end in ends
    )
    assert fewest >= TRADING_YEAR


def _first_backfill(recorded: Path, history_days: int) -> list[tuple[datetime, float, float]]:
    """(ts, close, split_basis) of the bars a first start asks Yahoo for on 2021-01-02."""
    client = YahooClient(
        replay_session(ReplayIndex.scan(recorded)), str(XNYS.tz), timeout_s=5, prepost=False
    )
    now = datetime(2021, 1, 2, tzinfo=UTC)  # the day after the recording's last session
    (window,) = live_windows(
        "1d", watermark=None, now=now, history_days=history_days, calendar=XNYS
    )
    fetch = client.fetch("AAPL", "1d", window.start, window.end)
    bars = parse_chart(
        fetch, XNYS, source="replay", include_prepost=False, settle_delay=timedelta(seconds=5)
    ).bars
    return [(bar.ts, bar.close, bar.split_basis) for bar in bars]


@pytest.mark.parametrize(("history_days", "warm"), [(None, True), (30, False)])
def test_the_default_history_warms_every_indicator_on_a_recorded_year(
    history_days: int | None, warm: bool, recordings: Path, tmp_path: Path
) -> None:
    # Only the full-year recording: the replay answers the window with it alone.
    shutil.copy(recordings / "yahoo" / "chart_AAPL_1d_2020.json", tmp_path)
    market = MarketSettings(interval="1d", history_days=history_days)  # None: the default
    bars = _first_backfill(tmp_path, market.history_days)
    state = SeriesState.new(configured_params(AnalyticsSettings()), annualization_factor("1d"))
    values = [state.feed(ts, close, basis) for ts, close, basis in bars]
    last = values[-1]._asdict()
    if warm:
        assert len(bars) >= TRADING_YEAR
        assert all(value is not None for value in last.values()), last
    else:  # the old default: about 21 bars
        assert len(bars) < 26
        assert all(last[column] is None for column in SLOW_TO_WARM), last
