"""producer.market in replay mode on the real broker: recorded closed bars, published once."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from producer.market.service import market_loop, poll_once
from producer.replay.overlay import inject
from shared.db import make_pool
from shared.health import Health
from shared.kafka import Topics, make_producer
from shared.schemas import Bar, decode
from shared.settings import DataSource, KafkaSettings, MarketSettings, Settings, SourceSettings
from tests.integration.bar_stream import end_offsets

NEW_YORK = ZoneInfo("America/New_York")
CLOSE = time(16)
SETTLE_DELAY = timedelta(seconds=MarketSettings().settle_delay_s)
SYMBOLS = ["AAPL", "MSFT", "NVDA", "SPY"]  # the defaults; SPY has 1m recordings only


def expected_daily_rows(yahoo_dir: Path) -> set[tuple[Any, ...]]:
    """Every recorded daily bar of the default symbols, computed from the raw JSON.

    Files of a symbol are taken in order of their first point; a bar is new when its New York
    session date is after every date taken so far (later overlapping files repeat them).
    A bar still forming when its file was recorded is not expected (issue 10, defect 5): replay
    fetches at the recording's own time (`meta.regularMarketTime`), and the `chart_*_6mo_*`
    files end one second after the 16:00 close, inside the settle delay, so their last bar is
    dropped as not closed, as it was live. That removes one bar of AAPL and one of MSFT.
    """
    files: list[dict[str, Any]] = []
    for path in sorted(yahoo_dir.glob("chart_*.json")):
        result = (json.loads(path.read_text())["chart"]["result"] or [None])[0]
        meta = (result or {}).get("meta", {})
        if meta.get("symbol") in SYMBOLS and meta.get("dataGranularity") == "1d":
            files.append(result)  # type: ignore[arg-type]
    rows: set[tuple[Any, ...]] = set()
    newest: dict[str, datetime] = {}
    for result in sorted(files, key=lambda r: (r["meta"]["symbol"], r["timestamp"][0])):
        symbol = result["meta"]["symbol"]
        quote = result["indicators"]["quote"][0]
        adj = result["indicators"]["adjclose"][0]["adjclose"]
        for i, stamp in enumerate(result["timestamp"]):
            day = datetime.fromtimestamp(stamp, UTC).astimezone(NEW_YORK).date()
            ts = datetime.combine(day, time(), UTC)
            if symbol in newest and ts <= newest[symbol]:
                continue
            close = datetime.combine(day, CLOSE, NEW_YORK) + SETTLE_DELAY
            if close.timestamp() > result["meta"].get("regularMarketTime", float("inf")):
                continue  # not closed when recorded (every recorded day closes at 16:00)
            newest[symbol] = ts
            prices = tuple(quote[k][i] for k in ("open", "high", "low", "close"))
            rows.add((symbol, ts, *prices, adj[i], quote["volume"][i]))
    return rows


def consume_all(settings: KafkaSettings, topic: str) -> list[tuple[bytes, Bar]]:
    ends = end_offsets(settings, topic)
    consumer = Consumer({**settings.client_config(), "group.id": f"{topic}-check"})
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    want = sum(ends.values())
    messages: list[tuple[bytes, Bar]] = []
    try:
        while len(messages) < want:
            message = consumer.poll(10)
            assert message is not None, f"only {len(messages)} of {want} messages arrived"
            assert message.error() is None, message.error()
            messages.append((message.key(), decode(message.value(), Bar)))
    finally:
        consumer.close()
    return messages


@pytest.fixture
def replay_settings(settings_factory: Callable[..., Settings], recordings: Path) -> Settings:
    return settings_factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=recordings),
        market=MarketSettings(symbols=SYMBOLS, interval="1d", requests_per_minute=600),
    )


def test_replay_publishes_the_recorded_closed_bars_once(
    replay_settings: Settings,
    topics: Topics,
    recordings: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    expected = expected_daily_rows(recordings / "yahoo")
    with caplog.at_level(logging.WARNING):
        report = poll_once(replay_settings)

    assert report.published == len(expected)
    assert not report.failed and not report.unknown_symbols and report.dead_letters == 0
    assert report.undelivered == 0
    spy_lines = [r for r in caplog.records if "no recorded 1d chart for SPY" in r.getMessage()]
    assert len(spy_lines) == 1

    messages = consume_all(replay_settings.kafka, topics.market_bars)
    assert all(key == bar.symbol.encode() for key, bar in messages)
    assert all((bar.source, bar.interval) == ("replay", "1d") for _, bar in messages)
    got = {
        (b.symbol, b.ts, b.open, b.high, b.low, b.close, b.adj_close, b.volume) for _, b in messages
    }
    assert len(got) == len(messages)  # no bar twice
    assert got == expected
    assert sum(end_offsets(replay_settings.kafka, topics.deadletter).values()) == 0

    with psycopg.connect(replay_settings.postgres.conninfo()) as conn:
        marks = dict(
            conn.execute(
                "SELECT key, watermark FROM producer_state"
                " WHERE producer = 'producer.market' AND key NOT LIKE '%|instrument'"
            ).fetchall()
        )
    newest = {}
    for symbol, ts, *_ in expected:
        newest[f"{symbol}|1d"] = max(ts, newest.get(f"{symbol}|1d", ts))
    assert marks == newest

    # A second run resumes from the watermarks: nothing is sent again.
    before = end_offsets(replay_settings.kafka, topics.market_bars)
    again = poll_once(replay_settings)
    assert again.published == 0 and not again.failed
    assert end_offsets(replay_settings.kafka, topics.market_bars) == before


def test_unknown_symbol_is_reported_once_and_rate_limits_are_retried(
    settings_factory: Callable[..., Settings],
    topics: Topics,
    recordings: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorded, overlay = tmp_path / "recorded", tmp_path / "overlay"
    recorded.mkdir()
    aapl = (recordings / "yahoo" / "chart_AAPL_1d_2020.json").read_text()
    (recorded / "aapl.json").write_text(aapl)
    # A range for ZZZZ makes the producer ask for it; the overlay answers Yahoo's 404 (twice:
    # yfinance retries a failed request once itself), a third one stays for a request never made.
    (recorded / "zzzz.json").write_text(aapl.replace('"symbol":"AAPL"', '"symbol":"ZZZZ"'))
    not_found = json.loads((recordings / "yahoo" / "chart_error_not_found.json").read_text())
    zzzz = inject(
        overlay,
        "zzzz",
        path="/v8/finance/chart/ZZZZ",
        responses=[{"status": 404, "body": not_found}] * 3,
    )
    limited = inject(
        overlay,
        "aapl",
        path="/v8/finance/chart/AAPL",
        responses=[{"status": 429, "body": "Too Many"}] * 2,
    )
    settings = settings_factory(
        source=SourceSettings(
            data_source=DataSource.REPLAY, replay_dir=recorded, replay_overlay_dir=overlay
        ),
        market=MarketSettings(symbols=["ZZZZ", "AAPL"], interval="1d", requests_per_minute=600),
    )
    producer = make_producer(settings.kafka, "test-market")
    pool = make_pool(settings.postgres, "test-market")
    stop = threading.Event()
    try:
        poller = market_loop(
            settings, producer=producer, pool=pool, health=Health("producer.market"), stop=stop
        )
        with caplog.at_level(logging.WARNING):
            report = poller.poll()
            again_report = poller.poll()  # the same process polls on
    finally:
        pool.close()

    assert report.unknown_symbols == ["ZZZZ"] and not report.failed
    assert report.published == 253  # AAPL, after backing off from the injected 429s
    assert not limited.exists()
    assert len([r for r in caplog.records if "unknown symbol ZZZZ" in r.getMessage()]) == 1
    assert again_report.published == 0 and not again_report.unknown_symbols
    assert zzzz.exists()  # its third 404 was never asked for
    assert sum(end_offsets(settings.kafka, topics.market_bars).values()) == 253
