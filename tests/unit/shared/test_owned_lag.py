"""The lag of the partitions a member owns: high watermark − stored offset, refreshed at most
every few seconds, unknown watermarks left out, revoked partitions removed from /metrics."""

from __future__ import annotations

from prometheus_client import REGISTRY

from shared.loop.owned_lag import OwnedLag, partition_lag
from shared.loop.partition import Partition

NAME = "pipeline_owned_partition_lag_messages"
UNKNOWN = -1001  # librdkafka's OFFSET_INVALID: no fetch response for that partition yet


def shown(topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(NAME, {"topic": topic, "partition": str(partition)})


def test_lag_counts_from_the_stored_offset_or_the_log_start() -> None:
    assert partition_lag(low=0, high=120, stored=100) == 20
    assert partition_lag(low=0, high=100, stored=100) == 0
    assert partition_lag(low=40, high=100, stored=None) == 60  # nothing stored: from the start
    assert partition_lag(low=UNKNOWN, high=UNKNOWN, stored=5) is None  # never fetched
    assert partition_lag(low=UNKNOWN, high=30, stored=None) is None
    # A stored offset past a stale watermark (fetched before the write): nothing is owed.
    assert partition_lag(low=0, high=90, stored=100) == 0


def test_refresh_sets_owned_partitions_and_forget_removes_them() -> None:
    marks = {("lagtest.a", 0): (0, 50), ("lagtest.a", 1): (0, 7), ("lagtest.a", 2): (UNKNOWN,) * 2}
    lag = OwnedLag(lambda key: marks[key], every_s=5.0)
    owned = {
        ("lagtest.a", 0): Partition(stored=45, known=True),
        ("lagtest.a", 1): Partition(stored=None, known=True),
        ("lagtest.a", 2): Partition(stored=3, known=True),
    }
    lag.refresh(owned, now=100.0)
    assert shown("lagtest.a", 0) == 5
    assert shown("lagtest.a", 1) == 7
    assert shown("lagtest.a", 2) is None  # no watermark yet: not a made-up 0

    owned[("lagtest.a", 0)].stored = 50
    lag.refresh(owned, now=102.0)  # within the refresh interval: unchanged
    assert shown("lagtest.a", 0) == 5
    lag.refresh(owned, now=105.0)
    assert shown("lagtest.a", 0) == 0

    lag.forget([("lagtest.a", 0), ("lagtest.a", 2)])
    assert shown("lagtest.a", 0) is None
    assert shown("lagtest.a", 1) == 7


def test_a_partition_awaiting_its_offsets_shows_no_lag() -> None:
    lag = OwnedLag(lambda key: (0, 10), every_s=5.0)
    lag.refresh({("lagtest.b", 0): Partition()}, now=1.0)  # stored offset not known yet
    assert shown("lagtest.b", 0) is None
