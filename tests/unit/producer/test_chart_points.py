"""The reshaping yfinance applies to a chart's points, reproduced on the raw chart alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from producer.market.chart_points import (
    ChartPoint,
    distinct,
    fold_live_point,
    read_points,
    resample,
)

MINUTE = timedelta(minutes=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def point(
    when: str, o: Any, h: Any, low: Any, c: Any, v: Any, key: str | None = None
) -> ChartPoint:
    moment = at(when)
    payload = {"timestamp": int(moment.timestamp())}
    return ChartPoint(at(key or when), moment, o, h, low, c, c, v, payload)


def test_points_are_read_in_time_order_with_their_payload() -> None:
    chart = {
        "timestamp": [1_700_000_060, 1_700_000_000],
        "indicators": {"quote": [{"open": [2.0, 1.0], "close": [None, 1.5], "volume": [7]}]},
    }
    first, second = read_points(chart, lambda moment: moment)
    assert (first.moment, first.open, first.close, first.adjclose) == (
        datetime.fromtimestamp(1_700_000_000, UTC),
        1.0,
        1.5,
        1.5,  # no adjclose sent: the close stands in (yfinance's "Adj Close")
    )
    assert first.volume is None and first.high is None  # short or absent arrays are nulls
    assert second.payload == {
        "timestamp": 1_700_000_060,
        "open": 2.0,
        "high": None,
        "low": None,
        "close": None,
        "volume": 7,
    }
    assert read_points(None, lambda moment: moment) == []


def test_30m_bars_come_from_the_15m_points_sent() -> None:
    points = [
        point("2024-10-02T13:30", 10.0, 12.0, 9.0, 11.0, 100),
        point("2024-10-02T13:45", None, 13.0, None, None, None),
        point("2024-10-02T14:00", None, None, None, None, None),
        # No point in 14:30-15:00: no bar (pandas would add an empty one).
        point("2024-10-02T15:15", 20.0, 21.0, 19.0, 20.5, 5),
    ]
    bars = resample(points, timedelta(minutes=30))
    assert [(b.key, b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
        (at("2024-10-02T13:30"), 10.0, 13.0, 9.0, 11.0, 100),
        (at("2024-10-02T14:00"), None, None, None, None, 0),
        (at("2024-10-02T15:00"), 20.0, 21.0, 19.0, 20.5, 5),
    ]
    assert bars[1].all_null and bars[2].payload == points[3].payload


def test_the_live_point_completes_the_bar_it_falls_in() -> None:
    bars = [
        point("2024-10-02T14:58", 1.0, 2.0, 0.5, 1.5, 10),
        point("2024-10-02T14:59", None, 3.0, 1.0, 2.5, 20),
    ]
    live = point("2024-10-02T14:59:37", 9.0, 4.0, 0.8, 3.5, 5)
    *kept, folded = fold_live_point([*bars, live], MINUTE, prepost=False)
    assert kept == bars[:1]
    assert (folded.key, folded.open, folded.high, folded.low, folded.close, folded.volume) == (
        at("2024-10-02T14:59"),
        9.0,
        4.0,
        0.8,
        3.5,
        25,
    )
    assert folded.payload == bars[1].payload
    # A new bar's first point is not a live point; nor, with pre/post-market, a whole minute.
    assert fold_live_point(bars, MINUTE, prepost=False) == bars
    five = [
        point("2024-10-02T20:00", 1.0, 1.0, 1.0, 1.0, 1),
        point("2024-10-02T20:03", *[2.0] * 4, 1),
    ]
    assert fold_live_point(five, timedelta(minutes=5), prepost=True) == five
    assert len(fold_live_point(five, timedelta(minutes=5), prepost=False)) == 1


def test_a_day_s_later_point_replaces_its_earlier_one() -> None:
    day = "2025-10-29T00:00"
    opened = point("2025-10-29T13:30", 1.0, 2.0, 0.5, 1.5, 10, key=day)
    latest = point("2025-10-29T20:00:01", 1.0, 2.0, 0.5, 1.6, 12, key=day)
    before = point("2025-10-28T13:30", 1.0, 2.0, 0.5, 1.5, 10, key="2025-10-28T00:00")
    assert fold_live_point([before, opened, latest], timedelta(days=1), prepost=False) == [
        before,
        latest,
    ]


def test_a_repeated_stamp_is_kept_once_the_first() -> None:
    first = point("2024-10-02T14:00", 1.0, 2.0, 0.5, 1.5, 10)
    again = point("2024-10-02T14:00", 5.0, 6.0, 4.5, 5.5, 50)
    assert distinct([first, again]) == [first]
