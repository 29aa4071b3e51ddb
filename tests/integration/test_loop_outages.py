"""The consumer loop on the paths a reviewer attacks: a two-member rebalance during a Postgres
outage, a position that drifted from the stored offset, a lock held on the offsets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from shared.errors import FencedError
from shared.kafka import Topics
from shared.loop.offsets import advance_offsets, claim_partitions
from shared.settings import KafkaSettings, PostgresSettings
from tests.integration.bar_stream import (
    as_rows,
    drained,
    end_offsets,
    minute_bars,
    publish_bars,
    stored_bars,
    stored_offsets,
)
from tests.integration.held_lock import HeldLock
from tests.integration.processes import ServiceProcess, storage_member, wait_for
from tests.integration.stacks import TestStack

# Two dozen symbols that hash onto all 12 partitions of market.bars (murmur2, as produced).
SYMBOLS = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "SPY", "QQQ", "IWM", "JPM", "BAC",
    "XOM", "CVX", "KO", "PEP", "WMT", "COST", "MCD", "NFLX", "AMD", "INTC", "ORCL", "CAT",
]  # fmt: skip


@contextmanager
def drained_by(
    member: ServiceProcess,
    pg: PostgresSettings,
    kafka: KafkaSettings,
    group: str,
    topic: str,
) -> Iterator[ServiceProcess]:
    """`member` started and given 60 s to drain `topic`; stopped (exit 0) afterwards."""
    member.start()
    try:
        wait_for(lambda: drained(pg, kafka, group, topic), 60, "the drain", detail=member.log)
        yield member
    finally:
        assert member.stop() == 0, member.log()


def owners(pg: PostgresSettings, group: str, topic: str) -> dict[int, str]:
    with psycopg.connect(pg.conninfo()) as conn:
        rows = conn.execute(
            "SELECT kafka_partition, owner FROM consumer_offsets "
            "WHERE consumer_group = %s AND topic = %s",
            (group, topic),
        ).fetchall()
    return dict(rows)


@pytest.mark.serial  # stops the shared PostgreSQL: never beside other tests
@pytest.mark.parametrize("failpoint", ["", "refuse_reassign_once"])
def test_partitions_moved_during_an_outage_drain_once_postgres_returns(
    failpoint: str,
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    stack: TestStack,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    """Two members store 240 bars over 12 partitions; Postgres stops; one member stops, so its
    partitions move to the other while their offsets cannot be read; Postgres starts; 240 more
    bars: every partition drains, and health is green only once every partition consumes.
    With `refuse_reassign_once`, librdkafka refuses the first re-assignment at the stored
    offsets: the partitions stay awaiting and the next recovery assigns them."""
    topic = topics.market_bars
    first = minute_bars(SYMBOLS, 10)
    second = minute_bars(SYMBOLS, 10, start=datetime(2024, 10, 2, 15, 0, tzinfo=UTC))
    a = storage_member(service_env, tmp_path, group, failpoint=failpoint).start()
    b = storage_member(service_env, tmp_path, group).start()
    try:
        wait_for(
            lambda: len(set(owners(pg_settings, group, topic).values())) == 2,
            60,
            "both members to own partitions",
        )
        publish_bars(kafka_settings, topic, first)
        wait_for(lambda: drained(pg_settings, kafka_settings, group, topic), 60, "first drain")
        stack.stop_postgres()
        try:
            assert b.stop() == 0, b.log()
            wait_for(lambda: "while PostgreSQL did not answer" in a.log(), 60, "the move to a")
            status, body = a.healthz()
            assert status == 503 and "waiting for their stored offsets" in str(body["reasons"])
        finally:
            stack.start_postgres()
        publish_bars(kafka_settings, topic, second)
        wait_for(
            lambda: a.healthz()[0] == 200,
            60,
            "health to turn green",
            detail=lambda: f"{a.healthz()}\n{a.log()}",
        )
        # Green means every partition is claimed by the one member left and consuming.
        assert len(owners(pg_settings, group, topic)) == 12
        assert len(set(owners(pg_settings, group, topic).values())) == 1
        wait_for(lambda: drained(pg_settings, kafka_settings, group, topic), 60, "second drain")
        assert stored_bars(pg_settings) == as_rows(first + second)
        ends = end_offsets(kafka_settings, topic)
        assert stored_offsets(pg_settings, group, topic) == ends
        assert all(end > 0 for end in ends.values())
        assert a.metrics()["pipeline_upsert_conflicts_total"] == 0
        assert "retention gap" not in a.log()
        if failpoint:
            assert f"failpoint {failpoint}" in a.log()
    finally:
        assert a.stop() == 0, a.log()
        b.stop()


def test_a_position_ahead_of_the_stored_offset_is_refused_and_nothing_is_skipped(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    topic = topics.market_bars
    bars = minute_bars(SYMBOLS[:3], 60)
    publish_bars(kafka_settings, topic, bars)
    member = storage_member(
        service_env, tmp_path, group, failpoint="drift_once", CONSUMER_BATCH_SIZE="10"
    )
    with drained_by(member, pg_settings, kafka_settings, group, topic) as drifting:
        assert "failpoint drift_once" in drifting.log()
        metrics = drifting.metrics()
        assert metrics["pipeline_refused_positions_total"] >= 1
        assert "refused, re-positioned" in drifting.log()
        assert stored_bars(pg_settings) == as_rows(bars)
        assert metrics["pipeline_upsert_conflicts_total"] == 0


def test_compare_and_set_refuses_a_batch_that_does_not_start_at_the_stored_offset(
    pg_settings: PostgresSettings,
) -> None:
    key = ("t.market.bars", 0)
    with psycopg.connect(pg_settings.conninfo()) as conn:
        claim_partitions(conn, "g", "me", [key])
        advance_offsets(conn, "g", "me", {key: None}, {key: 0}, {key: 10})
        for first in (12, 8):  # a gap, an overlap
            with pytest.raises(FencedError), conn.transaction():
                advance_offsets(conn, "g", "me", {key: 10}, {key: first}, {key: 20})
        advance_offsets(conn, "g", "me", {key: 10}, {key: 10}, {key: 20})
        with pytest.raises(FencedError), conn.transaction():
            advance_offsets(conn, "g", "someone else", {key: 20}, {key: 20}, {key: 30})
        (stored,) = conn.execute("SELECT next_offset FROM consumer_offsets").fetchone()
    assert stored == 20


@pytest.mark.serial  # times max.poll.interval.ms (6 s): CPU-starved beside xdist workers
def test_a_lock_held_on_the_offsets_past_max_poll_interval_keeps_the_member_in_its_group(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    """An analyst's open transaction locks the consumer's offsets rows for longer than both
    lock_timeout and max.poll.interval.ms: the consumer says why once, retries while polling
    (so it keeps its partitions), and commits once the lock is gone."""
    topic = topics.market_bars
    first = minute_bars(SYMBOLS, 5)
    second = minute_bars(SYMBOLS, 5, start=datetime(2024, 10, 2, 15, 0, tzinfo=UTC))
    publish_bars(kafka_settings, topic, first)
    consumer = storage_member(
        service_env,
        tmp_path,
        group,
        CONSUMER_MAX_POLL_INTERVAL_MS="6000",
        POSTGRES_LOCK_TIMEOUT_MS="500",
        CONSUMER_RETRY_MAX_S="2",
    ).start()
    try:
        wait_for(lambda: drained(pg_settings, kafka_settings, group, topic), 60, "first drain")
        with HeldLock(
            pg_settings.conninfo(),
            "SELECT * FROM consumer_offsets WHERE consumer_group = %s FOR UPDATE",
            (group,),
        ):
            publish_bars(kafka_settings, topic, second)
            wait_for(lambda: consumer.healthz()[0] == 503, 30, "health to say why")
            time.sleep(10)  # longer than max.poll.interval.ms (6 s)
            assert not drained(pg_settings, kafka_settings, group, topic)
        wait_for(lambda: drained(pg_settings, kafka_settings, group, topic), 60, "the drain")
        assert stored_bars(pg_settings) == as_rows(first + second)
        log = consumer.log()
        said = [line for line in log.splitlines() if "health red" in line]
        assert len(said) == 1 and "lock timeout" in said[0], log  # once, not once per retry
        assert "revoked" not in log and "lost" not in log, "the member kept its partitions"
        assert consumer.metrics()["pipeline_upsert_conflicts_total"] == 0
        wait_for(lambda: consumer.healthz()[0] == 200, 30, "health to recover")
    finally:
        assert consumer.stop() == 0, consumer.log()


def test_a_short_database_backoff_neither_fails_pool_waits_nor_refuses_first_batches(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    # A group with no stored offset asks the broker where each partition's log starts before
    # its first batch. CONSUMER_DB_RETRY_S, a backoff, was also that request's timeout (a
    # refused batch on timeout) and the wait for a pooled connection: with a short backoff the
    # pool waits failed at start (every partition awaiting PostgreSQL) and first batches were
    # refused. The pool wait is CONSUMER_POOL_WAIT_S now, the request's KAFKA_CONNECT_TIMEOUT_S.
    topic = topics.market_bars
    bars = minute_bars(SYMBOLS[:6], 20)
    publish_bars(kafka_settings, topic, bars)
    member = storage_member(service_env, tmp_path, group, CONSUMER_DB_RETRY_S="0.000001")
    with drained_by(member, pg_settings, kafka_settings, group, topic) as draining:
        assert stored_bars(pg_settings) == as_rows(bars)
        assert "batch refused" not in draining.log()
