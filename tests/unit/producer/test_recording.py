"""RECORD_DIR: a live run saves each raw data response in the layout the replay index reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from producer.data_source import ObservedSession, build_session
from producer.replay.adapters import RecordingAdapter, ReplayAdapter
from producer.replay.index import ReplayIndex
from shared.settings import DataSource, SourceSettings


@pytest.fixture
def chart_server(recordings: Path) -> Iterator[str]:
    """A local stand-in for Yahoo serving one recorded chart body (no network in unit tests)."""
    body = (recordings / "yahoo" / "chart_AAPL_1d_2020.json").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            payload = b"crumb-secret" if "getcrumb" in self.path else body
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_recorded_responses_are_indexed_like_recorded_data(
    chart_server: str, tmp_path: Path
) -> None:
    session = ObservedSession()
    session.mount("http://", RecordingAdapter(tmp_path))
    seen: list[int] = []
    session.observers.append(lambda response: seen.append(response.status_code))
    session.get(f"{chart_server}/v1/test/getcrumb", timeout=5)
    response = session.get(
        f"{chart_server}/v8/finance/chart/AAPL?period1=1577975400&period2=1609425001"
        "&interval=1d&crumb=SECRET",
        timeout=5,
    )
    assert response.json()["chart"]["result"][0]["meta"]["symbol"] == "AAPL"  # body still readable
    assert seen == [200, 200]

    (saved,) = tmp_path.rglob("*.json")
    assert "SECRET" not in saved.name and "crumb" not in saved.name
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p != saved]  # no crumb file
    (recorded,) = ReplayIndex.scan(tmp_path).files
    assert (recorded.key, recorded.granularity, recorded.status) == ("AAPL", "1d", 200)


def test_sessions_per_data_source(recordings: Path, tmp_path: Path) -> None:
    replay = build_session(SourceSettings(data_source=DataSource.REPLAY, replay_dir=recordings))
    assert isinstance(replay.get_adapter("https://query2.finance.yahoo.com/"), ReplayAdapter)  # type: ignore[attr-defined]
    assert isinstance(replay.get_adapter("http://example.com/"), ReplayAdapter)  # type: ignore[attr-defined]
    record = build_session(SourceSettings(data_source=DataSource.LIVE, record_dir=tmp_path))
    assert isinstance(record.get_adapter("https://query2.finance.yahoo.com/"), RecordingAdapter)  # type: ignore[attr-defined]
    live = build_session(SourceSettings(data_source=DataSource.LIVE))
    assert type(live).__module__ == "producer.data_source" and live.observers == []
