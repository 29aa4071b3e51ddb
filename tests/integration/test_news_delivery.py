"""producer.news loses no article when Kafka is unreachable for longer than message.timeout.ms,
and publishes none twice when restarted while storage lags (it reads its own record)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer

from producer.news.parsing import SERVICE
from producer.news.service import news_plan, run
from producer.polling import PollLoop
from producer.publisher import KafkaPublisher
from shared.db import make_pool
from shared.health import Health
from shared.kafka import Topics, producer_config
from shared.settings import DataSource, NewsSettings, Settings, SourceSettings
from tests.integration.bar_stream import end_offsets
from tests.integration.processes import wait_for
from tests.integration.storage_thread import fast_consumer, storage_running
from tests.integration.tcp_gate import gate_to

AAPL_NEWS = "finnhub/company_news_AAPL_2026-05-16_2026-05-23.json"
MESSAGE_TIMEOUT_MS = 1500


def watermark(settings: Settings, key: str) -> datetime | None:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        row = conn.execute(
            "SELECT watermark FROM producer_state WHERE producer = %s AND key = %s",
            (SERVICE, key),
        ).fetchone()
    return row[0] if row else None


def stored_ids(settings: Settings) -> set[str]:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM news_articles")}


def test_articles_whose_delivery_timed_out_after_the_flush_are_sent_again_by_a_later_poll(
    settings_factory: Callable[..., Settings],
    topics: Topics,
    recordings: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=recordings),
        news=NewsSettings(symbols=["AAPL"], until="2026-05-23"),
        consumer=fast_consumer(),
    )
    aapl: list[dict[str, Any]] = json.loads((recordings / AAPL_NEWS).read_text())
    expected = {str(item["id"]) for item in aapl}
    newest = max(datetime.fromtimestamp(item["datetime"], UTC) for item in aapl)
    stop, health = threading.Event(), Health(SERVICE)
    with (
        contextlib.closing(make_pool(settings.postgres, SERVICE)) as pool,
        gate_to(settings.kafka.bootstrap_servers) as gate,
        storage_running(settings),
    ):
        # The producer reaches Kafka only through the gate. A short flush, as a flush that gives
        # up while the broker is away; a message times out in librdkafka after 1.5 s.
        config = producer_config(settings.kafka, SERVICE) | {
            "bootstrap.servers": f"127.0.0.1:{gate.port}",
            "message.timeout.ms": MESSAGE_TIMEOUT_MS,
            "reconnect.backoff.max.ms": 200,
        }
        with KafkaPublisher(Producer(config), flush_timeout_s=0.3, stop=stop) as publisher:
            plan = news_plan(settings, pool, health, stop)
            poller = PollLoop(
                plan,
                service=SERVICE,
                publisher=publisher,
                topics=topics,
                pool=pool,
                health=health,
                stop=stop,
            )

            # Queued; the flush returns with all in flight.
            assert poller.poll().published == len(aapl)
            assert watermark(settings, "AAPL") is None  # nothing confirmed, nothing advanced
            assert any("not yet delivered" in r for r in health.snapshot()[1])
            # The broker stays away past message.timeout.ms: every delivery fails, later.
            threading.Event().wait(MESSAGE_TIMEOUT_MS / 1000 * 2)
            assert watermark(settings, "AAPL") is None

            gate.open()

            def everything_stored() -> bool:
                poller.poll()
                mark = watermark(settings, "AAPL")
                assert mark is None or mark <= newest
                return stored_ids(settings) == expected

            wait_for(everything_stored, 40, "every article stored", step=0.5)
        assert watermark(settings, "AAPL") == newest
        assert health.snapshot() == (True, [])
    # The first copies did fail (timed out in librdkafka), after the poll that sent them.
    assert any("Message timed out" in record.getMessage() for record in caplog.records)


def test_a_restart_while_storage_lags_publishes_no_article_again(
    settings_factory: Callable[..., Settings], topics: Topics, recordings: Path
) -> None:
    settings = settings_factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=recordings),
        news=NewsSettings(symbols=["AAPL"], until="2026-05-23"),
    )
    aapl: list[dict[str, Any]] = json.loads((recordings / AAPL_NEWS).read_text())
    # No storage consumer runs: article_symbols stays empty. Each run is a new process's poller.
    assert run(settings, threading.Event(), Health(SERVICE), once=True) == len(aapl)
    before = end_offsets(settings.kafka, topics.news_articles)
    assert run(settings, threading.Event(), Health(SERVICE), once=True) == 0
    assert end_offsets(settings.kafka, topics.news_articles) == before
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        recorded = conn.execute("SELECT count(*) FROM producer_articles").fetchone()
    assert recorded == (len(aapl),)
