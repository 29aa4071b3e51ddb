"""The Kafka broker stopped and started again mid-stream: storage and analytics turn red while it
is away, green when it answers, and end equal to an undisturbed run with no upsert conflict.

(Producers meeting a broker away for longer than their delivery timeout: test_news_delivery.py,
test_publisher_stop.py.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.kafka import Topics
from shared.settings import ConsumerSettings, KafkaSettings, PostgresSettings, Settings
from tests.integration.analytics_run import (
    assert_rows_equal,
    assert_states_match_rows,
    stored_indicators,
    uninterrupted,
)
from tests.integration.bar_stream import (
    as_rows,
    drained,
    publish_bars,
    random_walk_bars,
    stored_bars,
)
from tests.integration.processes import ServiceProcess, wait_for
from tests.integration.stacks import TestStack

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "SPY", "JPM", "XOM", "KO", "CAT"]
AWAY_S = 3


@pytest.mark.serial  # stops the shared Kafka broker: never beside other tests
def test_a_broker_restart_mid_stream_loses_and_doubles_nothing(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    stack: TestStack,
    service_env: dict[str, str],
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    bars = random_walk_bars(SYMBOLS, 60, seed=11)
    first, second = bars[: len(bars) // 2], bars[len(bars) // 2 :]
    consumers = ConsumerSettings()
    groups = (consumers.group_storage, consumers.group_analytics)

    def all_drained() -> bool:
        return all(
            drained(pg_settings, kafka_settings, group, topics.market_bars) for group in groups
        )

    publish_bars(kafka_settings, topics.market_bars, first)
    services = [
        ServiceProcess(module, service_env, tmp_path).start()
        for module in ("consumer.storage", "analytics.consumer")
    ]
    try:
        wait_for(all_drained, 90, "the first half stored and analysed")
        stack.stop_kafka()
        try:
            for service in services:
                wait_for(
                    lambda s=service: s.healthz()[0] == 503,
                    60,
                    f"{service.module} red while the broker is away",
                    detail=service.log,
                )
                _, body = service.healthz()
                assert any("Kafka" in reason for reason in body["reasons"]), body  # type: ignore[union-attr]
            time.sleep(AWAY_S)
            assert all(service.running for service in services), "they wait, never crash"
        finally:
            stack.start_kafka()
        publish_bars(kafka_settings, topics.market_bars, second)
        for service in services:
            wait_for(
                lambda s=service: s.healthz()[0] == 200,
                90,
                f"{service.module} green again",
                detail=service.log,
            )
        wait_for(all_drained, 90, "the second half stored and analysed")
        for service in services:
            assert service.metrics().get("pipeline_upsert_conflicts_total", 0) == 0
    finally:
        codes = [service.stop() for service in services]
    assert codes == [0, 0], "".join(service.log()[-3000:] for service in services)
    assert stored_bars(pg_settings) == as_rows(bars)
    settings = settings_factory()
    assert_rows_equal(stored_indicators(settings), uninterrupted(settings, bars))
    assert_states_match_rows(settings)
