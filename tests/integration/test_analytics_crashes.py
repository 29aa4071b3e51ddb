"""The analytics consumer killed, restarted, stopped and fenced on real Kafka + Postgres: the
indicators table always ends up equal, row for row, to what one never-stopping consumer writes."""

from __future__ import annotations

import random
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.kafka import Topics
from shared.schemas import Bar
from shared.settings import ConsumerSettings, Settings
from tests.integration.analytics_run import (
    assert_rows_equal,
    assert_states_match_rows,
    newest_per_series,
    stored_indicators,
    stored_states,
    uninterrupted,
    wait_analyzed,
)
from tests.integration.bar_stream import (
    PacedPublisher,
    end_offsets,
    publish_bars,
    random_walk_bars,
    stored_offsets,
)
from tests.integration.processes import FAST_MEMBER, ServiceProcess, wait_for

# Two dozen symbols that hash onto all 12 partitions of market.bars (murmur2, as produced).
SYMBOLS = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "SPY", "QQQ", "IWM", "JPM", "BAC",
    "XOM", "CVX", "KO", "PEP", "WMT", "COST", "MCD", "NFLX", "AMD", "INTC", "ORCL", "CAT",
]  # fmt: skip
# Enough bars that every indicator is past its warm-up (SMA 50, MACD 26 + 9) for a while.
BARS_PER_SYMBOL = 80


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Settings with a consumer group of this test's own: a Kafka group is broker-wide, and a
    member killed in another test must not hold up this test's rebalances (nor the reverse)."""
    group = f"analytics-{uuid.uuid4().hex[:10]}"
    return settings_factory(consumer=ConsumerSettings(group_analytics=group))


def analytics(
    settings: Settings, env: dict[str, str], tmp_path: Path, **extra: Any
) -> ServiceProcess:
    return ServiceProcess(
        "analytics.consumer",
        env,
        tmp_path,
        # FAST_MEMBER: the broker's minimum session, so a member killed with SIGKILL leaves the
        # group after 6 s.
        **{"CONSUMER_GROUP_ANALYTICS": settings.consumer.group_analytics, **FAST_MEMBER, **extra},
    )


def indicator_metric(process: ServiceProcess, name: str) -> float | None:
    """One counter's value for table="indicators" (None while it has never been touched)."""
    url = f"http://127.0.0.1:{process.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("table") == "indicators":
                return sample.value
    return None


def committed(settings: Settings, topic: str) -> int:
    """Messages of `topic` the analytics group has committed, over all partitions."""
    return sum(stored_offsets(settings.postgres, settings.consumer.group_analytics, topic).values())


def assert_written_once(settings: Settings, topic: str, bars: list[Bar]) -> None:
    """indicators equals the uninterrupted run's rows; one state per series at its newest bar;
    the stored offsets are the topic's end offsets."""
    expected = uninterrupted(settings, bars)
    assert len(expected) == len(bars)
    assert all(None not in row for key, row in expected.items() if key[2] == bars[-1].ts)
    assert_rows_equal(stored_indicators(settings), expected)
    states = stored_states(settings)
    assert len(states) == len(SYMBOLS)
    assert states == newest_per_series(expected)
    ends = end_offsets(settings.kafka, topic)
    assert sum(ends.values()) == len(bars)
    assert all(end > 0 for end in ends.values())  # every partition carries bars
    assert stored_offsets(settings.postgres, settings.consumer.group_analytics, topic) == ends


def assert_no_conflicts(process: ServiceProcess) -> None:
    """The process wrote rows, none of which was there already (no redelivery got through)."""
    assert (indicator_metric(process, "pipeline_rows_written_total") or 0) > 0
    assert indicator_metric(process, "pipeline_upsert_conflicts_total") == 0


@pytest.mark.parametrize("failpoint", ["after_copy", "after_commit"])
def test_sigkill_at_failpoint_then_restart_writes_each_row_once(
    failpoint: str,
    settings: Settings,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    bars = random_walk_bars(SYMBOLS, BARS_PER_SYMBOL, seed=11)
    publish_bars(settings.kafka, topics.market_bars, bars)
    batches = {"CONSUMER_BATCH_SIZE": "100"}

    crashing = analytics(settings, service_env, tmp_path, failpoint=failpoint, **batches)
    crashing.start()
    assert crashing.wait_exit(60) == -9, crashing.log()  # killed itself with SIGKILL
    assert f"failpoint {failpoint}" in crashing.log()
    rows = stored_indicators(settings)
    if failpoint == "after_copy":
        # Killed inside the transaction: none of the batch is visible, not even its offsets.
        assert rows == {}
        assert stored_states(settings) == {}
        assert committed(settings, topics.market_bars) == 0
    else:
        # Killed right after the first COMMIT: that batch's rows, states and offsets, together.
        assert 0 < len(rows) <= 100
        assert committed(settings, topics.market_bars) == len(rows)
        assert_states_match_rows(settings)
        expected = uninterrupted(settings, bars)
        assert_rows_equal(rows, {key: expected[key] for key in rows})

    restarted = analytics(settings, service_env, tmp_path, **batches).start()
    try:
        wait_analyzed(settings, timeout=60)
        assert_written_once(settings, topics.market_bars, bars)
        assert_no_conflicts(restarted)
        assert crashing.conflicts_before_kill() == 0  # every process that ran
    finally:
        assert restarted.stop() == 0, restarted.log()


def test_sigkills_at_random_points_while_bars_stream_in_change_no_row(
    settings: Settings,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    rng = random.Random(20241002)  # noqa: S311 - reproducible kill points, not secrets
    # A long live feed (~2000 bars/s) so every restarted consumer has a backlog of thousands of
    # bars to catch up with: a kill lands inside, between or after batches, never on an idle one.
    bars = random_walk_bars(SYMBOLS, 2500, seed=7)
    head = 10 * len(SYMBOLS)
    publish_bars(settings.kafka, topics.market_bars, bars[:head])
    feed = PacedPublisher(settings.kafka, topics.market_bars, bars[head:], 4 * len(SYMBOLS), 0.04)
    feed.start()
    # (published before the kill, committed after it) for each kill
    kills: list[tuple[int, int]] = []
    try:
        for _ in range(5):
            before = committed(settings, topics.market_bars)
            batch_size = rng.choice(["50", "100", "200"])
            victim = analytics(settings, service_env, tmp_path, CONSUMER_BATCH_SIZE=batch_size)
            victim.start()
            wait_for(
                lambda before=before: committed(settings, topics.market_bars) > before,
                45,
                "the restarted consumer's first commit",
            )
            time.sleep(rng.uniform(0.0, 0.4))
            published = head + feed.published
            assert victim.running, victim.log()
            victim.process.kill()  # type: ignore[union-attr]
            assert victim.wait_exit(10) == -9
            kills.append((published, committed(settings, topics.market_bars)))
            # Whatever was committed is one consistent prefix: rows and states together.
            assert_states_match_rows(settings)
        # At least one consumer died with bars published before its death still unprocessed.
        assert any(done < published for published, done in kills), kills

        feed.hurry()
        final = analytics(settings, service_env, tmp_path, CONSUMER_BATCH_SIZE="100").start()
        try:
            feed.finish(60)
            wait_analyzed(settings, timeout=60)
            assert_written_once(settings, topics.market_bars, bars)
            assert_no_conflicts(final)
        finally:
            assert final.stop() == 0, final.log()
    finally:
        feed.cancel()
    print(f"kills (published, committed): {kills}")


def test_members_leaving_and_a_member_fenced_write_what_one_consumer_writes(
    settings: Settings,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    bars = random_walk_bars(SYMBOLS, 400, seed=3)
    head = 40 * len(SYMBOLS)
    publish_bars(settings.kafka, topics.market_bars, bars[:head])
    batches = {"CONSUMER_BATCH_SIZE": "100"}
    # Two members that tolerate being blocked for a while on the stalled member's row locks
    # (they insert the same rows once they own its partitions) until its batch is rolled back.
    first, second = (
        analytics(
            settings, service_env, tmp_path, CONSUMER_MAX_POLL_INTERVAL_MS="30000", **batches
        ).start()
        for _ in range(2)
    )
    members = [first, second]
    # The rest arrives as a live feed: one minute of all symbols every 0.1 s (about 35 s).
    feed = PacedPublisher(settings.kafka, topics.market_bars, bars[head:], len(SYMBOLS), 0.1)
    try:
        feed.start()
        wait_for(
            lambda: all(
                (indicator_metric(member, "pipeline_rows_written_total") or 0) > 0
                for member in members
            ),
            45,
            "both members to write rows",
        )
        # A third member joins, takes some partitions, and stalls in its first batch (rows
        # copied, offsets not yet advanced) for longer than its max.poll.interval.ms: it leaves
        # the group and the others take over its partitions, claiming them in consumer_offsets.
        stalled = analytics(
            settings,
            service_env,
            tmp_path,
            failpoint="stall_after_copy",
            stall_s=14,
            CONSUMER_MAX_POLL_INTERVAL_MS="6000",
            **batches,
        ).start()
        members.append(stalled)
        wait_for(lambda: "failpoint stall_after_copy" in stalled.log(), 30, "the stall to begin")
        # When it wakes up its compare-and-set on the offsets fails: the batch is rolled back.
        wait_for(
            lambda: (stalled.metrics().get("pipeline_fenced_batches_total") or 0) >= 1,
            45,
            "the stalled member's late batch to be refused (fenced)",
        )
        assert "batch dropped" in stalled.log()

        # Half-way through, one member stops cleanly (SIGTERM); the others take its partitions.
        wait_for(
            lambda: committed(settings, topics.market_bars) >= len(bars) // 2,
            45,
            "half of the bars to be analyzed",
        )
        assert indicator_metric(second, "pipeline_upsert_conflicts_total") == 0
        assert second.stop() == 0, second.log()
        feed.hurry()
        feed.finish(60)
        wait_analyzed(settings, timeout=60)
        assert_written_once(settings, topics.market_bars, bars)
        # No member ever found a row already there: the fenced batch never committed.
        assert indicator_metric(first, "pipeline_upsert_conflicts_total") == 0
        assert indicator_metric(stalled, "pipeline_upsert_conflicts_total") in (0, None)
    finally:
        feed.cancel()
        for member in members:
            assert member.stop() == 0, member.log()


def test_a_state_that_cannot_be_restored_pauses_only_its_partition(
    settings: Settings,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """One series' stored state is unreadable (e.g. written by a newer version): its partition
    pauses with the reason, every other partition goes on; once the state is readable again
    the partition resumes and the table equals an uninterrupted run's."""
    bars = random_walk_bars(SYMBOLS, BARS_PER_SYMBOL, seed=5)
    half = len(bars) // 2
    topic = topics.market_bars
    publish_bars(settings.kafka, topic, bars[:half])
    first = analytics(settings, service_env, tmp_path).start()
    try:
        wait_for(lambda: committed(settings, topic) == half, 60, "the first half")
    finally:
        assert first.stop() == 0, first.log()
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        partition, good_state = conn.execute(
            "SELECT kafka_partition, packed_state FROM analytics_state WHERE symbol = 'AAPL'"
        ).fetchone()
        conn.execute(
            "UPDATE analytics_state SET packed_state = %s WHERE symbol = 'AAPL'",
            (msgspec.msgpack.encode({"indicators": {"version": 99}}),),
        )
    publish_bars(settings.kafka, topic, bars[half:])
    ends = end_offsets(settings.kafka, topic)
    group = settings.consumer.group_analytics
    second = analytics(settings, service_env, tmp_path, CONSUMER_REFUSED_RETRY_S="1").start()
    try:

        def others_done() -> bool:
            stored = stored_offsets(settings.postgres, group, topic)
            return all(stored.get(p) == end for p, end in ends.items() if p != partition)

        wait_for(others_done, 60, "every other partition to drain")
        status, body = second.healthz()
        assert status == 503
        assert "cannot be restored" in str(body["reasons"]) and "AAPL" in str(body["reasons"])
        stored = stored_offsets(settings.postgres, group, topic)
        assert stored[partition] < ends[partition]
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            # Readable again, in the json form of a row written before migration 0013.
            conn.execute(
                "UPDATE analytics_state SET packed_state = NULL, state = %s::json"
                " WHERE symbol = 'AAPL'",
                (msgspec.json.encode(msgspec.msgpack.decode(good_state)).decode(),),
            )
        wait_analyzed(settings, timeout=60)
        assert_written_once(settings, topic, bars)
        wait_for(lambda: second.healthz()[0] == 200, 30, "health to recover")
        assert second.running
    finally:
        assert second.stop() == 0, second.log()
