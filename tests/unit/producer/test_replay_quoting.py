"""Replay answers symbols that travel percent-quoted (^GSPC as %5EGSPC), as Yahoo would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from producer.data_source import replay_session
from producer.market.parsing import parse_chart
from producer.replay.index import ReplayIndex
from producer.replay.manifest import Manifest
from producer.replay.overlay import INJECTED_HEADER, inject
from producer.yahoo_client import YahooClient
from shared.calendar import get_calendar

# A real recording: QQQ's 2020 daily chart.
REAL = "yahoo/chart_QQQ_1d_2020.json"
SYMBOLS = ("^GSPC", "^VIX", "BRK-B", "EURUSD=X")
START, END = datetime(2020, 1, 2, 14, 30, tzinfo=UTC), datetime(2020, 12, 31, 21, 0, tzinfo=UTC)
SETTLE = timedelta(seconds=5)


def derived_recordings(recordings: Path, folder: Path) -> Path:
    """DERIVED, not recorded: QQQ's real 2020 body, once per symbol with meta.symbol renamed
    (no index/currency chart is among the recordings). Only the name the request must match
    differs from what Yahoo sent."""
    body = json.loads((recordings / REAL).read_text())
    for number, symbol in enumerate(SYMBOLS):
        body["chart"]["result"][0]["meta"]["symbol"] = symbol
        (folder / f"derived_{number}.json").write_text(json.dumps(body))
    return folder


@pytest.fixture(scope="module")
def index(recordings: Path, tmp_path_factory: pytest.TempPathFactory) -> ReplayIndex:
    return ReplayIndex.scan(derived_recordings(recordings, tmp_path_factory.mktemp("quoted")))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_manifest_matches_the_quoted_path_as_requests_sends_it(
    index: ReplayIndex, symbol: str
) -> None:
    url = (
        requests.Request(
            "GET",
            f"https://query2.finance.yahoo.com/v8/finance/chart/{symbol}",
            params={
                "period1": int(START.timestamp()),
                "period2": int(END.timestamp()),
                "interval": "1d",
            },
        )
        .prepare()
        .url
    )
    assert url is not None
    answer = Manifest(index).answer("GET", url)
    assert answer.status == 200
    assert json.loads(answer.body)["chart"]["result"][0]["meta"]["symbol"] == symbol


def test_an_index_symbol_replays_through_yfinance_request_path(
    index: ReplayIndex, recordings: Path
) -> None:
    client = YahooClient(replay_session(index), "America/New_York", timeout_s=5, prepost=False)
    fetch = client.fetch("^GSPC", "1d", START, END)
    recorded = json.loads((recordings / REAL).read_text())["chart"]["result"][0]
    assert fetch.chart is not None and fetch.chart["meta"]["symbol"] == "^GSPC"
    bars = parse_chart(
        fetch, get_calendar("XNYS"), source="replay", include_prepost=False, settle_delay=SETTLE
    ).bars
    assert len(bars) == len(recorded["timestamp"])
    closes = recorded["indicators"]["quote"][0]["close"]
    assert [bar.close for bar in bars] == pytest.approx(closes)


def test_an_overlay_entry_names_the_symbol_unquoted(index: ReplayIndex, tmp_path: Path) -> None:
    entry = inject(tmp_path, "vix-503", path="/v8/finance/chart/^VIX", responses=[{"status": 503}])
    session = replay_session(index, tmp_path)
    response = session.get("https://query2.finance.yahoo.com/v8/finance/chart/^VIX")
    assert response.status_code == 503 and response.headers[INJECTED_HEADER] == "1"
    assert not entry.exists()
