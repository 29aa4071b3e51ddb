"""The replay index and manifest over the bundled recordings (read-only)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from producer.data_source import replay_session
from producer.replay.index import ReplayIndex
from producer.replay.manifest import Manifest
from producer.replay.overlay import INJECTED_HEADER, inject
from producer.yahoo_intervals import fetch_interval

CHART = "https://query2.finance.yahoo.com/v8/finance/chart/"


@pytest.fixture(scope="module")
def yahoo_dir(recordings: Path) -> Path:
    return recordings / "yahoo"


@pytest.fixture(scope="module")
def index(yahoo_dir: Path) -> ReplayIndex:
    return ReplayIndex.scan(yahoo_dir)


def chart_url(symbol: str, interval: str, start: datetime, end: datetime) -> str:
    query = f"period1={int(start.timestamp())}&period2={int(end.timestamp())}&interval={interval}"
    return f"{CHART}{symbol}?{query}&includePrePost=False&events=div%2Csplits%2CcapitalGains"


def raw_facts(path: Path) -> tuple[str, str, datetime, datetime]:
    """Symbol, granularity, first and last point, read straight from the JSON."""
    result = json.loads(path.read_text())["chart"]["result"][0]
    stamps = result["timestamp"]
    meta = result["meta"]
    return (
        meta["symbol"],
        meta["dataGranularity"],
        datetime.fromtimestamp(min(stamps), UTC),
        datetime.fromtimestamp(max(stamps), UTC),
    )


@pytest.mark.parametrize(
    "name",
    [
        "chart_AAPL_1d_2020.json",
        "chart_AAPL_1m_2024-10-02.json",
        "chart_TSLA_1d_2010-06-29_2023-08-11.json",
        "chart_TSLA_30m_prepost_2021-11-22.json",
        "chart_SPY_1m_2018-05-29.json",
    ],
)
def test_index_reads_what_each_file_is(index: ReplayIndex, yahoo_dir: Path, name: str) -> None:
    recorded = next(f for f in index.files if f.path.name == name)
    symbol, granularity, first, last = raw_facts(yahoo_dir / name)
    assert (recorded.key, recorded.granularity, recorded.first, recorded.last) == (
        symbol,
        granularity,
        first,
        last,
    )


def test_index_never_trusts_file_names(tmp_path: Path, yahoo_dir: Path) -> None:
    misnamed = tmp_path / "chart_MSFT_5m_1999.json"
    misnamed.write_bytes(
        (yahoo_dir / "chart_NVDA_1d_2021-02-01_2022-01-28_split4for1.json").read_bytes()
    )
    (recorded,) = ReplayIndex.scan(tmp_path).files
    assert (recorded.key, recorded.granularity) == ("NVDA", "1d")


def test_index_flags_prepost_errors_and_empty_bodies(index: ReplayIndex) -> None:
    by_name = {f.path.name: f for f in index.files}
    assert by_name["chart_TSLA_30m_prepost_2021-11-22.json"].prepost
    assert not by_name["chart_AAPL_1d_2020.json"].prepost
    assert by_name["chart_error_not_found.json"].status == 404
    weekend = by_name["chart_AAPL_1m_weekend_no_bars_2025-02-01.json"]
    assert (weekend.status, weekend.first, weekend.last) == (200, None, None)
    # quote/quoteSummary bodies and CSV exports are not chart responses.
    assert {p.suffix for p in index.ignored} == {".json", ".csv"}
    assert not any(p.name.startswith("chart_") for p in index.ignored)


def test_yfinance_fetches_30m_as_15m(index: ReplayIndex) -> None:
    # The TSLA file was recorded at 30m by another client; yfinance never asks Yahoo for 30m.
    assert fetch_interval("30m") == "15m"
    assert index.chart_ranges("TSLA", fetch_interval("30m"), prepost=True) == []
    assert len(index.chart_ranges("TSLA", "30m", prepost=True)) == 1


def test_chart_ranges_are_ordered_by_first_timestamp(index: ReplayIndex) -> None:
    ranges = index.chart_ranges("AAPL", "1d", prepost=False)
    assert [r.first.date().isoformat() for r in ranges] == [
        "2020-01-02",
        "2020-08-31",
        "2025-04-30",
    ]
    assert index.chart_ranges("SPY", "1d", prepost=False) == []


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # Only the full-year file contains the year, though the later-recorded split file overlaps.
        ("2020-01-02T14:30", "2020-12-31T14:30:01", "chart_AAPL_1d_2020.json"),
        ("2020-03-01T00:00", "2020-04-01T00:00", "chart_AAPL_1d_2020.json"),
        # Both contain the split file's window: the newer recording (2025) answers.
        (
            "2020-08-31T13:30",
            "2020-11-06T14:30:01",
            "chart_AAPL_1d_2020-08-31_2020-11-06_split4for1.json",
        ),
        # Nothing contains 2020-12..2025-05: of the overlapping files the newest recording answers.
        ("2020-12-01T00:00", "2025-05-10T00:00", "chart_AAPL_1d_6mo_2025-04-30_2025-10-29.json"),
    ],
)
def test_overlapping_files(index: ReplayIndex, start: str, end: str, expected: str) -> None:
    window = [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in (start, end)]
    answer = Manifest(index).answer("GET", chart_url("AAPL", "1d", *window))
    assert answer.status == 200
    assert answer.source is not None and answer.source.name == expected


def test_range_request_is_answered_by_a_file_recorded_for_that_range(index: ReplayIndex) -> None:
    answer = Manifest(index).answer("GET", f"{CHART}MSFT?range=6mo&interval=1d")
    assert (
        answer.source is not None
        and answer.source.name == "chart_MSFT_1d_6mo_2025-04-30_2025-10-29.json"
    )
    assert Manifest(index).answer("GET", f"{CHART}MSFT?range=1d&interval=1d").status == 404


def test_unmatched_request_is_a_404_and_a_log_line(
    index: ReplayIndex, yahoo_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    start = datetime(2019, 1, 2, tzinfo=UTC)
    with caplog.at_level(logging.WARNING, logger="producer.replay.manifest"):
        answer = Manifest(index).answer(
            "GET", chart_url("AAPL", "1d", start, start + timedelta(days=9))
        )
        other = Manifest(index).answer("GET", "https://example.com/anything?api_key=SECRET")
    assert answer.status == 404
    # Yahoo's own not-found body, so the client's real 404 path runs.
    assert answer.body == (yahoo_dir / "chart_error_not_found.json").read_bytes()
    assert other.status == 404 and other.body == b""
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "replay: no recorded response for GET query2.finance.yahoo.com/v8/finance/chart/AAPL"
        "?interval=1d&period1=1546387200&period2=1547164800",
        "replay: no recorded response for GET example.com/anything",
    ]
    assert "SECRET" not in caplog.text


def test_unknown_symbol_is_a_404(index: ReplayIndex) -> None:
    start = datetime(2020, 1, 2, tzinfo=UTC)
    answer = Manifest(index).answer(
        "GET", chart_url("ZZZZ", "1d", start, start + timedelta(days=5))
    )
    assert answer.status == 404


def test_overlay_sequence_then_fall_through(index: ReplayIndex, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    entry = inject(
        overlay,
        "aapl-429",
        path="/v8/finance/chart/AAPL",
        query={"interval": "1d"},
        responses=[{"status": 429, "body": "Too Many Requests"}, {"status": 503, "body": {"x": 1}}],
    )
    session = replay_session(index, overlay)
    url = chart_url(
        "AAPL",
        "1d",
        datetime(2020, 1, 2, 14, 30, tzinfo=UTC),
        datetime(2020, 12, 31, 14, 31, tzinfo=UTC),
    )
    first, second, third = (session.get(url, timeout=5) for _ in range(3))
    assert (first.status_code, first.text, first.headers[INJECTED_HEADER]) == (
        429,
        "Too Many Requests",
        "1",
    )
    assert (second.status_code, second.json(), second.headers[INJECTED_HEADER]) == (
        503,
        {"x": 1},
        "1",
    )
    assert third.status_code == 200 and INJECTED_HEADER not in third.headers
    assert third.json()["chart"]["result"][0]["meta"]["symbol"] == "AAPL"
    assert not entry.exists()  # consumed


def test_overlay_only_matches_its_request(index: ReplayIndex, tmp_path: Path) -> None:
    inject(tmp_path, "msft", path="/v8/finance/chart/MSFT", responses=[{"status": 500}])
    session = replay_session(index, tmp_path)
    url = chart_url(
        "AAPL", "1d", datetime(2020, 1, 2, 14, 30, tzinfo=UTC), datetime(2020, 2, 1, tzinfo=UTC)
    )
    assert session.get(url, timeout=5).status_code == 200
    assert (tmp_path / "msft.json").exists()


def test_overlay_delay_beyond_the_timeout_is_a_timeout(index: ReplayIndex, tmp_path: Path) -> None:
    inject(
        tmp_path, "slow", path="/v8/finance/chart/AAPL", responses=[{"status": 200, "delay_s": 5}]
    )
    with pytest.raises(requests.exceptions.ReadTimeout):
        replay_session(index, tmp_path).get(f"{CHART}AAPL?interval=1d", timeout=0.05)


def test_read_only_folder_is_never_written(yahoo_dir: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in yahoo_dir.parent.rglob("*")}
    index = ReplayIndex.scan(yahoo_dir.parent)
    session = replay_session(index)
    session.get(f"{CHART}AAPL?range=6mo&interval=1d", timeout=5)
    assert {p: p.stat().st_mtime_ns for p in yahoo_dir.parent.rglob("*")} == before


def test_fred_observations_get_their_series_from_the_sibling_series_file(yahoo_dir: Path) -> None:
    index = ReplayIndex.scan(yahoo_dir.parent / "fred")
    observations = {f.path.name: f.key for f in index.files if f.endpoint == "series/observations"}
    assert observations == {
        "series_observations_CPIAUCSL_rt2023-04-27.json": "CPIAUCSL",
        "series_observations_GDP_rt2024-12-19.json": "GDP",
        "series_observations_GNPCA_limit10_paginated_rt2020-05-20.json": "GNPCA",
        "series_observations_WGS10YR_rt2025-01-13.json": "WGS10YR",
    }
    answer = Manifest(index).answer(
        "GET", "https://api.stlouisfed.org/fred/series/observations?series_id=GDP&api_key=k"
    )
    assert (
        answer.source is not None
        and answer.source.name == "series_observations_GDP_rt2024-12-19.json"
    )
