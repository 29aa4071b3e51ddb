"""Each consumer's own /metrics shows the lag of the partitions it owns: a storage member held
back by a lock on price_bars shows the bars it owes, 0 once it drained, and a partition that
moves to a second member leaves the first one's /metrics."""

from __future__ import annotations

from pathlib import Path

from shared.kafka import Topics
from shared.settings import KafkaSettings, PostgresSettings
from tests.integration.bar_stream import drained, end_offsets, minute_bars, publish_bars
from tests.integration.held_lock import HeldLock
from tests.integration.processes import ServiceProcess, storage_member, wait_for

NAME = "pipeline_owned_partition_lag_messages"
SYMBOLS = [f"LAG{i}" for i in range(12)]


def lag_by_partition(member: ServiceProcess, topic: str) -> dict[int, float]:
    found = {}
    for (name, labels), value in member.samples().items():
        if name == NAME:
            assert {label for label, _ in labels} == {"topic", "partition"}
            if dict(labels)["topic"] == topic:
                found[int(dict(labels)["partition"])] = value
    return found


def test_a_held_back_member_shows_its_lag_then_zero_and_forgets_moved_partitions(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    topic = topics.market_bars
    # Writes to price_bars wait (and time out: the member retries on hold); claims and fetches go
    # on, so the member owns its partitions and has fetched what it owes.
    held = HeldLock(pg_settings.conninfo(), "LOCK TABLE price_bars IN SHARE MODE").take()
    publish_bars(kafka_settings, topic, minute_bars(SYMBOLS, 5))
    ends = {p: end for p, end in end_offsets(kafka_settings, topic).items() if end}
    first = storage_member(
        service_env, tmp_path, group, POSTGRES_LOCK_TIMEOUT_MS="200", CONSUMER_RETRY_MAX_S="1"
    ).start()
    second = None
    try:
        wait_for(
            lambda: {p: v for p, v in lag_by_partition(first, topic).items() if v} == ends,
            60,
            "the held-back member to show the bars it owes",
            detail=lambda: (lag_by_partition(first, topic), ends, first.log()[-2000:]),
        )
        held.release()
        wait_for(lambda: drained(pg_settings, kafka_settings, group, topic), 60, "the drain")
        wait_for(
            lambda: set(lag_by_partition(first, topic).values()) == {0.0},
            30,
            "lag 0 after the drain",
            detail=lambda: lag_by_partition(first, topic),
        )
        assert len(lag_by_partition(first, topic)) == 12  # every partition of market.bars

        second = storage_member(service_env, tmp_path, group).start()

        def split() -> bool:
            mine, theirs = lag_by_partition(first, topic), lag_by_partition(second, topic)
            return bool(mine) and bool(theirs) and not set(mine) & set(theirs)

        wait_for(
            split,
            60,
            "revoked partitions to leave the first member's /metrics",
            detail=lambda: (lag_by_partition(first, topic), lag_by_partition(second, topic)),
        )
    finally:
        held.release()
        if second is not None:
            assert second.stop() == 0, second.log()
        assert first.stop() == 0, first.log()
