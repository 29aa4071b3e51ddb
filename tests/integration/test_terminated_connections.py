"""The services' PostgreSQL connections terminated again and again mid-stream (an operator's
`pg_terminate_backend`, a failover, a pooler's restart): storage and analytics keep going, and
what they end up with equals an undisturbed run's, row for row, with no upsert conflict.

Only this test's database's connections are cut, so it runs beside the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import psycopg

from shared.kafka import Topics
from shared.settings import ConsumerSettings, KafkaSettings, PostgresSettings, Settings
from tests.integration.analytics_run import (
    assert_rows_equal,
    assert_states_match_rows,
    stored_indicators,
    uninterrupted,
)
from tests.integration.bar_stream import (
    PacedPublisher,
    as_rows,
    drained,
    random_walk_bars,
    stored_bars,
)
from tests.integration.processes import ServiceProcess, wait_for

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "SPY", "JPM", "XOM", "KO", "CAT"]
BARS_PER_SYMBOL = 60
CUTS = 6


class Terminator(threading.Thread):
    """Terminates every other backend of `dbname` every `every_s` seconds, `times` times."""

    def __init__(self, pg: PostgresSettings, times: int, every_s: float) -> None:
        super().__init__(name="terminator", daemon=True)
        self._pg, self._times, self._every_s = pg, times, every_s
        self._cancelled = threading.Event()
        self.terminated = 0

    def run(self) -> None:
        with psycopg.connect(self._pg.conninfo(dbname="postgres"), autocommit=True) as conn:
            for _ in range(self._times):
                if self._cancelled.wait(self._every_s):
                    return
                (count,) = conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                    " FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self._pg.dbname,),
                ).fetchone()  # type: ignore[misc]
                self.terminated += count

    def cancel(self) -> None:
        self._cancelled.set()
        self.join(10)


def test_terminated_connections_lose_and_double_nothing(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    bars = random_walk_bars(SYMBOLS, BARS_PER_SYMBOL, seed=7)
    consumers = ConsumerSettings()
    storage = ServiceProcess("consumer.storage", service_env, tmp_path).start()
    analytics = ServiceProcess("analytics.consumer", service_env, tmp_path).start()
    publisher = PacedPublisher(kafka_settings, topics.market_bars, bars, step=24, pause_s=0.2)
    terminator = Terminator(pg_settings, CUTS, every_s=1.0)
    try:
        publisher.start()
        terminator.start()
        publisher.finish()
        terminator.join(30)
        assert terminator.terminated >= CUTS, "each cut found the services' connections"
        for group in (consumers.group_storage, consumers.group_analytics):
            wait_for(
                lambda group=group: drained(pg_settings, kafka_settings, group, topics.market_bars),
                90,
                f"{group} to drain market.bars after the cuts",
                detail=lambda: storage.log()[-3000:] + analytics.log()[-3000:],
            )
        for service in (storage, analytics):
            assert service.running, service.log()
            wait_for(lambda s=service: s.healthz()[0] == 200, 30, f"{service.module} green")
            assert service.metrics().get("pipeline_upsert_conflicts_total", 0) == 0
    finally:
        terminator.cancel()
        publisher.cancel()
        codes = (storage.stop(), analytics.stop())
    assert codes == (0, 0), storage.log()[-3000:] + analytics.log()[-3000:]
    # Red while a cut connection was in use, green again after it (the last word is green).
    logs = storage.log() + analytics.log()
    assert "health red: PostgreSQL unavailable" in logs, logs[-3000:]
    assert "health recovered: PostgreSQL unavailable" in logs, logs[-3000:]
    assert stored_bars(pg_settings) == as_rows(bars)
    settings = settings_factory()
    assert_rows_equal(stored_indicators(settings), uninterrupted(settings, bars))
    assert_states_match_rows(settings)
