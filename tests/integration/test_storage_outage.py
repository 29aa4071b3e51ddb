"""Postgres stopped for 30 s mid-stream: the storage consumer pauses, shows red, resumes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shared.kafka import Topics
from shared.settings import ConsumerSettings, KafkaSettings, PostgresSettings
from tests.integration.bar_stream import as_rows, drained, minute_bars, publish_bars, stored_bars
from tests.integration.processes import ServiceProcess, wait_for
from tests.integration.stacks import TestStack

OUTAGE_S = 30


@pytest.mark.serial  # stops the shared PostgreSQL: never beside other tests
def test_postgres_outage_pauses_then_resumes_without_loss(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    stack: TestStack,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    bars = minute_bars(["AAPL", "MSFT", "NVDA"], 60)
    first, second, third = bars[:60], bars[60:120], bars[120:]
    publish_bars(kafka_settings, topics.market_bars, first)
    consumer = ServiceProcess("consumer.storage", service_env, tmp_path).start()
    try:
        wait_for(lambda: len(stored_bars(pg_settings)) == len(first), 60, "the first bars")
        stack.stop_postgres()
        try:
            publish_bars(kafka_settings, topics.market_bars, second)
            wait_for(lambda: consumer.healthz()[0] == 503, 30, "health to turn red")
            _, body = consumer.healthz()
            assert any("PostgreSQL" in reason for reason in body["reasons"])  # type: ignore[union-attr]
            time.sleep(OUTAGE_S)
            assert consumer.running, "the consumer must pause, not crash"
            publish_bars(kafka_settings, topics.market_bars, third)
        finally:
            stack.start_postgres()
        wait_for(lambda: consumer.healthz()[0] == 200, 60, "health to recover")
        wait_for(
            lambda: drained(
                pg_settings, kafka_settings, ConsumerSettings().group_storage, topics.market_bars
            ),
            60,
            "the drain after the outage",
        )
        assert stored_bars(pg_settings) == as_rows(bars)
        assert consumer.metrics()["pipeline_upsert_conflicts_total"] == 0
    finally:
        assert consumer.stop() == 0, consumer.log()
