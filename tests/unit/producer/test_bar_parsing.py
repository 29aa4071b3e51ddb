"""Recorded chart JSON → yfinance's real parsing (replayed session, no network) → Bars and drops.

Expected values are computed here from the raw JSON, independently of the code under test.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yfinance as yf

from producer.data_source import replay_session
from producer.market.parsing import ParsedChart, parse_chart
from producer.replay.index import ReplayIndex
from producer.replay.overlay import inject
from producer.yahoo_client import ChartFetch, UnknownSymbolError, YahooClient
from shared.calendar import get_calendar
from shared.schemas import event_id

NEW_YORK = ZoneInfo("America/New_York")
SETTLE = timedelta(seconds=5)


def raw_result(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return json.load(f)["chart"]["result"][0]


def raw_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    quote = result["indicators"]["quote"][0]
    adj = result["indicators"].get("adjclose", [{}])[0].get("adjclose")
    return [
        {
            "stamp": datetime.fromtimestamp(t, UTC),
            **{k: quote[k][i] for k in ("open", "high", "low", "close", "volume")},
            "adjclose": adj[i] if adj else None,
        }
        for i, t in enumerate(result["timestamp"])
    ]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def parse(fetch: ChartFetch, include_prepost: bool = False) -> ParsedChart:
    return parse_chart(
        fetch,
        get_calendar("XNYS"),
        source="replay",
        include_prepost=include_prepost,
        settle_delay=SETTLE,
    )


def test_daily_bars_are_keyed_by_session_date_with_raw_prices(
    client: YahooClient, yahoo_dir: Path
) -> None:
    result = raw_result(yahoo_dir / "chart_AAPL_1d_2020.json")
    rows = raw_rows(result)
    fetch = client.fetch("AAPL", "1d", rows[0]["stamp"], rows[-1]["stamp"] + timedelta(seconds=1))
    parsed = parse(fetch)

    splits = result["events"]["splits"].values()
    basis = 1.0
    for split in splits:
        basis *= split["numerator"] / split["denominator"]
    expected = [
        (
            datetime.combine(row["stamp"].astimezone(NEW_YORK).date(), time(), UTC),
            row["open"],
            row["high"],
            row["low"],
            row["close"],
            row["adjclose"],
            row["volume"],
        )
        for row in rows
    ]
    got = [(b.ts, b.open, b.high, b.low, b.close, b.adj_close, b.volume) for b in parsed.bars]
    assert got == expected
    assert len(got) == 253 and not parsed.dropped and not parsed.dead_letters
    assert basis == 4.0  # the 2020-08-31 4:1 split is in this window
    assert {b.split_basis for b in parsed.bars} == {basis}
    first = parsed.bars[0]
    assert (first.source, first.symbol, first.interval) == ("replay", "AAPL", "1d")
    assert first.event_id == event_id("replay", "AAPL", "1d", datetime(2020, 1, 2, tzinfo=UTC))
    assert first.fetched_at == fetch.fetched_at


def test_last_daily_bar_stamped_at_regular_market_time(
    client: YahooClient, yahoo_dir: Path
) -> None:
    rows = raw_rows(raw_result(yahoo_dir / "chart_AAPL_1d_6mo_2025-04-30_2025-10-29.json"))
    assert rows[-1]["stamp"] == utc("2025-10-29T20:00:01")  # not the 13:30Z open
    fetch = client.fetch("AAPL", "1d", rows[0]["stamp"], rows[-1]["stamp"] + timedelta(seconds=1))
    bars = parse(fetch).bars
    assert [b.ts.date() for b in bars[-2:]] == [date(2025, 10, 28), date(2025, 10, 29)]
    assert (bars[-1].close, bars[-1].volume) == (rows[-1]["close"], rows[-1]["volume"])
    assert {b.split_basis for b in bars} == {1.0}  # no split inside this window


def test_a_window_after_a_known_split_keeps_the_basis_the_split_set(
    client: YahooClient, yahoo_dir: Path
) -> None:
    rows = raw_rows(raw_result(yahoo_dir / "chart_AAPL_1d_6mo_2025-04-30_2025-10-29.json"))
    fetch = client.fetch("AAPL", "1d", rows[0]["stamp"], rows[-1]["stamp"] + timedelta(seconds=1))
    # 2020's 4:1 and 2014's 7:1 are known (Yahoo's whole-life list); one dated after the fetch
    # is not counted yet.
    known = {date(2020, 8, 31): 4.0, date(2014, 6, 9): 7.0, date(2099, 1, 2): 2.0}
    bars = parse_chart(
        fetch,
        get_calendar("XNYS"),
        source="replay",
        include_prepost=False,
        settle_delay=SETTLE,
        known_splits=known,
    ).bars
    assert bars and {b.split_basis for b in bars} == {28.0}


def test_intraday_trailing_point_and_null_row_are_dropped_and_counted(
    client: YahooClient, yahoo_dir: Path
) -> None:
    rows = raw_rows(raw_result(yahoo_dir / "chart_AAPL_1m_2024-10-02.json"))
    # The 2024-10-02 session; Yahoo appended the latest price of 2024-10-03 after it.
    start, end = utc("2024-10-02T13:30"), utc("2024-10-02T20:00")
    outside = [r for r in rows if not start <= r["stamp"] < end]
    fields = ("open", "high", "low", "close", "volume")
    null = [r for r in rows if start <= r["stamp"] < end and all(r[k] is None for k in fields)]
    assert [r["stamp"] for r in outside] == [utc("2024-10-03T20:00")]
    assert [r["stamp"] for r in null] == [utc("2024-10-02T15:15")]

    parsed = parse(client.fetch("AAPL", "1m", start, end))

    assert parsed.dropped == {"outside_window": len(outside), "all_null": len(null)}
    kept = [r for r in rows if r not in outside and r not in null]
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in parsed.bars] == [
        (r["stamp"], r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in kept
    ]
    assert len(parsed.bars) == 389
    assert all(b.adj_close is None for b in parsed.bars)  # Yahoo sends no adjclose intraday


def test_trailing_point_inside_a_replay_window_is_outside_the_session(
    client: YahooClient, yahoo_dir: Path
) -> None:
    rows = raw_rows(raw_result(yahoo_dir / "chart_AAPL_1m_2024-10-02.json"))
    # The file's own range: yfinance removes the 16:00 New York point as post-market itself.
    fetch = client.fetch("AAPL", "1m", rows[0]["stamp"], rows[-1]["stamp"] + timedelta(seconds=1))
    parsed = parse(fetch)
    assert parsed.dropped == {"outside_session": 1, "all_null": 1}
    assert len(parsed.bars) == 389


def test_bars_not_closed_when_fetched_are_dropped(client: YahooClient, yahoo_dir: Path) -> None:
    rows = raw_rows(raw_result(yahoo_dir / "chart_AAPL_1m_2024-10-02.json"))
    start, end = utc("2024-10-02T13:30"), utc("2024-10-02T20:00")
    # As if fetched at 15:00:03Z: the 14:59 bar ended at 15:00 but is within the settle delay.
    fetched_at = utc("2024-10-02T15:00:03")
    fields = ("open", "high", "low", "close", "volume")
    valued = [
        r for r in rows if start <= r["stamp"] < end and any(r[k] is not None for k in fields)
    ]
    closed = [r for r in valued if r["stamp"] + timedelta(minutes=1) + SETTLE <= fetched_at]

    fetch = replace(client.fetch("AAPL", "1m", start, end), fetched_at=fetched_at)
    parsed = parse(fetch)

    assert [b.ts for b in parsed.bars] == [r["stamp"] for r in closed]
    assert parsed.bars[-1].ts == utc("2024-10-02T14:58")
    assert parsed.dropped == {
        "unclosed": len(valued) - len(closed),
        "all_null": 1,
        "outside_window": 1,
    }


def test_unparseable_rows_become_dead_letters(yahoo_dir: Path, tmp_path: Path) -> None:
    body = json.loads((yahoo_dir / "chart_AAPL_1m_2018-05-29.json").read_text())
    quote = body["chart"]["result"][0]["indicators"]["quote"][0]
    quote["high"][10] = None  # some but not all prices null
    quote["volume"][20] = -5
    (tmp_path / "edited.json").write_text(json.dumps(body))
    client = YahooClient(
        replay_session(ReplayIndex.scan(tmp_path)), "America/New_York", timeout_s=5, prepost=False
    )
    stamps = body["chart"]["result"][0]["timestamp"]
    start = datetime.fromtimestamp(stamps[0], UTC)
    parsed = parse(client.fetch("AAPL", "1m", start, start + timedelta(hours=7)))

    assert len(parsed.bars) == 388
    reasons = [d.reason for d in parsed.dead_letters]
    assert reasons == [
        "AAPL 1m: some but not all prices are null: high",
        "AAPL 1m: volume must not be negative, got -5",
    ]
    payload = json.loads(parsed.dead_letters[1].payload)
    assert (payload["timestamp"], payload["volume"]) == (stamps[20], -5)
    assert {d.key for d in parsed.dead_letters} == {"AAPL"}


def test_unknown_symbol(client: YahooClient) -> None:
    with pytest.raises(UnknownSymbolError, match="ZZZZ"):
        client.fetch("ZZZZ", "1d", utc("2020-01-02T00:00"), utc("2020-02-01T00:00"))


def test_no_bars_in_the_window(yahoo_dir: Path, tmp_path: Path) -> None:
    weekend = json.loads((yahoo_dir / "chart_AAPL_1m_weekend_no_bars_2025-02-01.json").read_text())
    inject(
        tmp_path,
        "weekend",
        path="/v8/finance/chart/AAPL",
        responses=[{"status": 200, "body": weekend}],
    )
    client = YahooClient(
        replay_session(ReplayIndex.scan(yahoo_dir), tmp_path),
        "America/New_York",
        timeout_s=5,
        prepost=False,
    )
    fetch = client.fetch("AAPL", "1m", utc("2025-02-01T00:00"), utc("2025-02-02T00:00"))
    parsed = parse(fetch)
    assert not (fetch.chart or {}).get("timestamp")
    assert parsed.bars == [] and not parsed.dropped


def test_a_daily_point_stamped_at_the_end_is_counted_not_lost(
    client: YahooClient, yahoo_dir: Path
) -> None:
    rows = raw_rows(raw_result(yahoo_dir / "chart_AAPL_1d_2020.json"))
    # The window ends at the last point's stamp: yfinance removes that point as past the end,
    # although its session date is the window's last day.
    fetch = client.fetch("AAPL", "1d", rows[0]["stamp"], rows[-1]["stamp"])
    parsed = parse(fetch)
    assert parsed.dropped == {"outside_window": 1}
    assert len(parsed.bars) == len(rows) - 1


def test_the_live_point_is_folded_as_yfinance_folds_it(yahoo_dir: Path, tmp_path: Path) -> None:
    body = json.loads((yahoo_dir / "chart_AAPL_1m_2018-05-29.json").read_text())
    result = body["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    last = result["timestamp"][-1]
    # Yahoo's live point: the latest trade, inside the last (still forming) minute.
    result["timestamp"].append(last + 37)
    live = {"open": None, "high": 999.0, "low": 1.0, "close": 188.5, "volume": 1000}
    for name, value in live.items():
        quote[name].append(value)
    (tmp_path / "live.json").write_text(json.dumps(body))
    session = replay_session(ReplayIndex.scan(tmp_path))
    start = datetime.fromtimestamp(result["timestamp"][0], UTC)
    end = datetime.fromtimestamp(last + 60, UTC)
    client = YahooClient(session, "America/New_York", timeout_s=5, prepost=False)
    bars = parse(client.fetch("AAPL", "1m", start, end)).bars

    # yfinance as the oracle: its own frame of the same response.
    ticker = yf.Ticker("AAPL", session=session)
    ticker._tz = "America/New_York"
    frame = ticker.history(start=start, end=end, interval="1m", auto_adjust=False, keepna=True)
    expected = [
        (stamp.to_pydatetime().astimezone(UTC), row.Open, row.High, row.Low, row.Close, row.Volume)
        for stamp, row in frame.iterrows()
    ]
    assert len(expected) == len(result["timestamp"]) - 1  # the live point merged
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars] == expected
    assert (bars[-1].high, bars[-1].low, bars[-1].close) == (999.0, 1.0, 188.5)


def test_a_daily_point_yahoo_stamps_before_midnight_is_the_next_day_s() -> None:
    # yfinance's fix_Yahoo_dst_issue: 23:00 local the day before means that day's midnight.
    day = datetime(2024, 3, 4, tzinfo=UTC)
    stamp = datetime(2024, 3, 3, 23, 0, tzinfo=NEW_YORK)
    chart = {
        "timestamp": [int(stamp.timestamp())],
        "indicators": {
            "quote": [
                {"open": [10.0], "high": [11.0], "low": [9.0], "close": [10.5], "volume": [7]}
            ],
            "adjclose": [{"adjclose": [10.4]}],
        },
    }
    fetched_at = datetime(2024, 3, 5, tzinfo=UTC)
    fetch = ChartFetch("AAPL", "1d", day - timedelta(days=2), fetched_at, chart, fetched_at)
    (bar,) = parse(fetch).bars
    assert (bar.ts, bar.close, bar.adj_close, bar.volume) == (day, 10.5, 10.4, 7)
