"""Recorded Yahoo responses → producer.market → Kafka → consumer.storage → price_bars."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from shared.kafka import Topics
from shared.settings import ConsumerSettings, KafkaSettings, PostgresSettings
from tests.conftest import REPO_ROOT
from tests.integration.bar_stream import drained
from tests.integration.processes import ServiceProcess, wait_for
from tests.integration.test_market_producer import SYMBOLS, expected_daily_rows


def test_replayed_daily_bars_land_in_price_bars_exactly(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    recordings: Path,
    tmp_path: Path,
) -> None:
    env = {
        **service_env,
        "DATA_SOURCE": "replay",
        "REPLAY_DIR": str(recordings),
        "MARKET_SYMBOLS": ",".join(SYMBOLS),
        "MARKET_INTERVAL": "1d",
        "MARKET_REQUESTS_PER_MINUTE": "600",
        "HEALTH_PORT": "0",
    }
    produced = subprocess.run(
        [sys.executable, "-m", "producer.market", "--once"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert produced.returncode == 0, produced.stderr

    consumer = ServiceProcess("consumer.storage", env, tmp_path).start()
    try:
        wait_for(
            lambda: drained(
                pg_settings, kafka_settings, ConsumerSettings().group_storage, topics.market_bars
            ),
            60,
            "the storage consumer to drain market.bars",
        )
        with psycopg.connect(pg_settings.conninfo()) as conn:
            rows = conn.execute(
                "SELECT symbol, ts, open, high, low, close, adj_close, volume FROM price_bars"
                " WHERE interval = '1d' AND source = 'replay'"
            ).fetchall()
            total = conn.execute("SELECT count(*) FROM price_bars").fetchone()[0]
            latest = conn.execute(
                "SELECT symbol, max(ts) FROM latest_bars GROUP BY symbol ORDER BY symbol"
            ).fetchall()
            revisions = conn.execute("SELECT count(*) FROM bar_revisions").fetchone()[0]
        expected = expected_daily_rows(recordings / "yahoo")
        assert total == len(rows) == len(expected)
        assert set(rows) == expected
        newest: dict[str, object] = {}
        for symbol, ts, *_ in expected:
            newest[symbol] = max(ts, newest.get(symbol, ts))  # type: ignore[type-var]
        assert latest == sorted(newest.items())
        assert revisions == 0
        assert consumer.metrics()["pipeline_upsert_conflicts_total"] == 0
    finally:
        assert consumer.stop() == 0, consumer.log()
