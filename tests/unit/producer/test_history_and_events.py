"""Issue 10: history the calendar cannot place (defect 7), the recording's own fetch time
(defect 5) and chart events as Yahoo gives them (defect 3), on recorded charts.

Expected values come from the raw JSON, independently of the code under test.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from producer.market.actions import basis_as_of, chart_actions, splits_by_day
from producer.market.parsing import parse_chart, recorded_fetch_time
from producer.yahoo_client import YahooClient
from shared.calendar import ExchangeCalendar, get_calendar

NEW_YORK = ZoneInfo("America/New_York")
SETTLE = timedelta(seconds=5)
TSLA = "chart_TSLA_1d_2010-06-29_2023-08-11.json"
NVDA = "chart_NVDA_1d_2021-02-01_2022-01-28_split4for1.json"
AAPL_6MO = "chart_AAPL_1d_6mo_2025-04-30_2025-10-29.json"


def raw(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())["chart"]["result"][0]


def session_days(result: dict[str, Any]) -> list[date]:
    return [datetime.fromtimestamp(t, UTC).astimezone(NEW_YORK).date() for t in result["timestamp"]]


def test_a_calendar_reaches_back_to_the_earliest_requested_date() -> None:
    # MSFT's first session (1986-03-13): before the default calendar's 2000 start.
    early = get_calendar("XNYS", date(1986, 3, 13))
    session = early.session(date(1986, 3, 13))
    assert session is not None and session.open == datetime(1986, 3, 13, 14, 30, tzinfo=UTC)
    assert early.session(date(1986, 3, 15)) is None  # a Saturday: closed, not unknown
    assert get_calendar("XNYS", date(2005, 1, 3)) is get_calendar("XNYS")


def test_bars_the_calendar_cannot_place_are_dropped_and_counted_never_fail_the_chart(
    client: YahooClient, yahoo_dir: Path
) -> None:
    result = raw(yahoo_dir / TSLA)
    days = session_days(result)
    start = datetime.fromtimestamp(result["timestamp"][0], UTC)
    end = datetime.fromtimestamp(result["timestamp"][-1], UTC) + timedelta(seconds=1)
    fetch = client.fetch("TSLA", "1d", start, end)
    # A calendar that starts after the recording does (as 2000 did for MSFT's 1986 history).
    late_start = ExchangeCalendar("XNYS", date(2012, 1, 1))
    parsed = parse_chart(
        fetch, late_start, source="replay", include_prepost=False, settle_delay=SETTLE
    )
    unplaced = [d for d in days if d < date(2012, 1, 1)]
    assert unplaced and parsed.dropped == {"outside_calendar": len(unplaced)}
    assert [b.ts.date() for b in parsed.bars] == [d for d in days if d >= date(2012, 1, 1)]
    assert not parsed.rejected


def test_the_recorded_fetch_time_drops_the_bar_still_forming(
    client: YahooClient, yahoo_dir: Path
) -> None:
    result = raw(yahoo_dir / AAPL_6MO)
    recorded = datetime.fromtimestamp(result["meta"]["regularMarketTime"], UTC)
    assert recorded == datetime(2025, 10, 29, 20, 0, 1, tzinfo=UTC)  # 1 s after the close
    start = datetime.fromtimestamp(result["timestamp"][0], UTC)
    fetch = client.fetch("AAPL", "1d", start, recorded + timedelta(seconds=1))
    assert recorded_fetch_time(fetch.chart) == recorded
    as_recorded = replace(fetch, fetched_at=recorded)
    parsed = parse_chart(
        as_recorded,
        get_calendar("XNYS"),
        source="replay",
        include_prepost=False,
        settle_delay=SETTLE,
    )
    assert parsed.dropped == {"unclosed": 1}
    assert [b.ts.date() for b in parsed.bars] == session_days(result)[:-1]
    assert recorded_fetch_time({"meta": {}}) is None


def test_events_outside_the_requested_window_are_not_the_window_s(
    client: YahooClient, yahoo_dir: Path
) -> None:
    result = raw(yahoo_dir / NVDA)
    (split,) = result["events"]["splits"].values()
    split_at = datetime.fromtimestamp(split["date"], UTC)  # 2021-07-20, 4:1
    last = datetime.fromtimestamp(result["timestamp"][-1], UTC)
    # The last 30 days: Yahoo's answer would list no event; the recording is wider.
    recent = client.fetch("NVDA", "1d", last - timedelta(days=30), last + timedelta(seconds=1))
    window = parse_chart(
        recent, get_calendar("XNYS"), source="replay", include_prepost=False, settle_delay=SETTLE
    )
    assert window.splits == {} and window.actions == []
    assert chart_actions(recent.chart, "NVDA", "replay", start=recent.start, end=recent.end) == []
    whole = chart_actions(result, "NVDA", "replay")
    assert [(a.kind, a.ts, a.ratio) for a in whole] == [("split", split_at, 4.0)]
    assert splits_by_day(whole) == {date(2021, 7, 20): 4.0}


def test_the_basis_is_every_split_up_to_the_fetch() -> None:
    splits = {date(2021, 7, 20): 4.0, date(2024, 6, 10): 10.0}
    assert basis_as_of(splits, datetime(2025, 2, 21, 21, tzinfo=UTC)) == 40.0
    assert basis_as_of(splits, datetime(2024, 6, 9, tzinfo=UTC)) == 4.0
    assert basis_as_of({}, datetime(2024, 6, 9, tzinfo=UTC)) == 1.0


def test_an_unreadable_event_is_refused() -> None:
    with pytest.raises(ValueError, match="unreadable split"):
        chart_actions({"events": {"splits": {"1": {"date": 1, "numerator": 0}}}}, "X", "replay")
