"""The storage consumer on real Kafka + Postgres: exact rows, dead letters, crashes, fencing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from shared.kafka import Topics
from shared.schemas import encode
from shared.settings import ConsumerSettings, KafkaSettings, PostgresSettings
from tests.integration.bar_stream import (
    as_rows,
    drained,
    minute_bars,
    publish,
    publish_bars,
    stored_bars,
    stored_offsets,
)
from tests.integration.processes import FAST_MEMBER, ServiceProcess, wait_for

SYMBOLS = ["AAPL", "MSFT", "NVDA", "SPY", "QQQ", "TSLA", "AMZN", "GOOG"]


def storage(env: dict[str, str], tmp_path: Path, **extra: Any) -> ServiceProcess:
    # A short session: a member SIGKILLed here leaves the group in 6 s, not librdkafka's 45 s.
    return ServiceProcess("consumer.storage", env, tmp_path, **{**FAST_MEMBER, **extra})


def wait_drained(
    pg: PostgresSettings, kafka: KafkaSettings, topic: str, timeout: float = 60
) -> None:
    wait_for(
        lambda: drained(pg, kafka, ConsumerSettings().group_storage, topic),
        timeout,
        f"offsets of {topic} to reach the end",
    )


def test_stores_exactly_the_published_bars_and_dead_letters_poison(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    bars = minute_bars(SYMBOLS, 50)
    publish_bars(kafka_settings, topics.market_bars, bars[:200])
    poison = [
        (b"AAPL", b"{not json"),
        (b"MSFT", b'{"schema":"market.bar/1","symbol":"MSFT"}'),
        # Well-formed but impossible: high below low.
        (b"NVDA", encode(msgspec.structs.replace(bars[0], high=1.0))),
    ]
    publish(kafka_settings, topics.market_bars, poison)
    publish_bars(kafka_settings, topics.market_bars, bars[200:])
    # A bar sent twice within one batch: DISTINCT ON keeps one, the batch does not fail.
    publish_bars(kafka_settings, topics.market_bars, bars[-3:])

    consumer = storage(service_env, tmp_path).start()
    try:
        wait_drained(pg_settings, kafka_settings, topics.market_bars)
        # Bars re-sent after they were stored (a producer retrying): conflicts, counted.
        publish_bars(kafka_settings, topics.market_bars, bars[:5])
        wait_drained(pg_settings, kafka_settings, topics.market_bars)
        assert stored_bars(pg_settings) == as_rows(bars)
        with psycopg.connect(pg_settings.conninfo()) as conn:
            letters = conn.execute(
                "SELECT service, topic, key, reason FROM dead_letters ORDER BY kafka_offset"
            ).fetchall()
        assert len(letters) == len(poison)
        assert {row[0] for row in letters} == {"consumer.storage"}
        assert {row[1] for row in letters} == {topics.market_bars}
        assert all(row[3] for row in letters)
        metrics = consumer.metrics()
        assert metrics["pipeline_dead_letters_total"] == len(poison)
        assert metrics["pipeline_upsert_conflicts_total"] == 5
        assert consumer.healthz()[0] == 200
    finally:
        assert consumer.stop() == 0, consumer.log()


@pytest.mark.parametrize("failpoint", ["after_copy", "after_commit"])
def test_sigkill_at_failpoint_then_restart_stores_each_bar_once(
    failpoint: str,
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    bars = minute_bars(SYMBOLS, 40)
    publish_bars(kafka_settings, topics.market_bars, bars)
    small_batches = {"CONSUMER_BATCH_SIZE": "25"}

    crashing = storage(service_env, tmp_path, failpoint=failpoint, **small_batches)
    crashing.start()
    assert crashing.wait_exit(60) == -9, crashing.log()  # killed itself with SIGKILL
    with psycopg.connect(pg_settings.conninfo()) as conn:
        stored_after_crash = conn.execute("SELECT count(*) FROM price_bars").fetchone()[0]
    # after_copy dies inside the transaction: nothing of it may be visible.
    # after_commit dies right after the first COMMIT: exactly that batch is stored.
    assert (stored_after_crash == 0) if failpoint == "after_copy" else (0 < stored_after_crash)

    restarted = storage(service_env, tmp_path, **small_batches).start()
    try:
        wait_drained(pg_settings, kafka_settings, topics.market_bars)
        assert stored_bars(pg_settings) == as_rows(bars)
        # Across every process that ran: the killed one's count was printed before the kill.
        conflicts = crashing.conflicts_before_kill()
        assert conflicts + restarted.metrics()["pipeline_upsert_conflicts_total"] == 0
    finally:
        assert restarted.stop() == 0, restarted.log()


def test_consumer_stalled_past_max_poll_interval_is_fenced(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    bars = minute_bars(SYMBOLS, 30)
    publish_bars(kafka_settings, topics.market_bars, bars)
    timeouts = {"CONSUMER_SESSION_TIMEOUT_MS": "6000", "CONSUMER_MAX_POLL_INTERVAL_MS": "7000"}
    stalled = storage(
        service_env,
        tmp_path,
        failpoint="stall_after_copy",
        stall_s=20,
        **timeouts,
    ).start()
    healthy = storage(service_env, tmp_path, **timeouts)
    try:
        wait_for(
            lambda: "failpoint stall_after_copy" in stalled.log(),
            60,
            "the stall to begin",
            detail=stalled.log,
        )
        # The second member gets the partitions once the stalled one misses
        # max.poll.interval.ms; it blocks on the stalled transaction's row locks until that
        # one rolls back.
        healthy.start()
        wait_drained(pg_settings, kafka_settings, topics.market_bars, timeout=90)
        wait_for(
            lambda: stalled.metrics().get("pipeline_fenced_batches_total", 0) >= 1,
            60,
            "the stalled consumer's compare-and-set to fail",
        )
        assert stored_bars(pg_settings) == as_rows(bars)
        assert healthy.metrics()["pipeline_upsert_conflicts_total"] == 0
        assert stalled.metrics()["pipeline_upsert_conflicts_total"] == 0
    finally:
        assert stalled.stop() == 0, stalled.log()
        assert healthy.stop() == 0, healthy.log()


def test_newer_schema_version_pauses_its_partition_and_is_not_dead_lettered(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    bars = minute_bars(["AAPL"], 3)
    newer = encode(bars[1]).replace(b'"market.bar/1"', b'"market.bar/2"')
    publish(
        kafka_settings,
        topics.market_bars,
        [(b"AAPL", encode(bars[0])), (b"AAPL", newer), (b"AAPL", encode(bars[2]))],
    )
    consumer = storage(service_env, tmp_path).start()
    try:
        # The bar before the newer message is stored; the partition waits at the newer one.
        wait_for(
            lambda: (
                stored_offsets(pg_settings, ConsumerSettings().group_storage, topics.market_bars)
                != {}
            ),
            30,
            "the first bar's commit",
        )
        assert list(
            stored_offsets(
                pg_settings, ConsumerSettings().group_storage, topics.market_bars
            ).values()
        ) == [1]
        assert stored_bars(pg_settings) == as_rows(bars[:1])
        status, body = consumer.healthz()
        assert status == 503
        assert any("upgrade needed" in reason for reason in body["reasons"])  # type: ignore[union-attr]
        with psycopg.connect(pg_settings.conninfo()) as conn:
            assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
        time.sleep(2)  # and it stays there: the partition is paused, not skipped
        assert list(
            stored_offsets(
                pg_settings, ConsumerSettings().group_storage, topics.market_bars
            ).values()
        ) == [1]
    finally:
        assert consumer.stop() == 0, consumer.log()
