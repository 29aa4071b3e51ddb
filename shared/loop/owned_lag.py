"""The lag of the partitions this member owns, on its own /metrics: high watermark − stored offset.

The high watermark is librdkafka's cached one (`get_watermark_offsets(cached=True)`: local, no
broker round trip), which every fetch response refreshes; read_committed makes it the last stable
offset, what this member can reach. A paused partition is not fetched, so its watermark is the
one of its last fetch: the monitor's `pipeline_consumer_lag_messages` asks the broker instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from confluent_kafka import Consumer, TopicPartition

from shared.loop.contract import PartitionKey
from shared.loop.partition import Partition
from shared.metrics import OWNED_LAG

REFRESH_S = 5.0

Watermarks = Callable[[PartitionKey], tuple[int, int]]


def partition_lag(low: int, high: int, stored: int | None) -> int | None:
    """Messages from the stored offset (the log start when none is stored) to the high
    watermark; None while a watermark is unknown (negative: librdkafka's OFFSET_INVALID)."""
    start = low if stored is None else stored
    if high < 0 or start < 0:
        return None
    # A watermark fetched before the batch that passed it was committed: nothing is owed.
    return max(0, high - start)


def cached_watermarks(consumer: Consumer) -> Watermarks:
    def read(key: PartitionKey) -> tuple[int, int]:
        return consumer.get_watermark_offsets(TopicPartition(*key), cached=True)

    return read


class OwnedLag:
    """Sets the gauge for owned partitions at most every `every_s`; removes revoked ones."""

    def __init__(self, watermarks: Watermarks, every_s: float = REFRESH_S) -> None:
        self._watermarks = watermarks
        self._every_s = every_s
        self._next = 0.0
        self._shown: set[PartitionKey] = set()

    def refresh(
        self, partitions: Mapping[PartitionKey, Partition], now: float | None = None
    ) -> None:
        now = time.monotonic() if now is None else now
        if now < self._next:
            return
        self._next = now + self._every_s
        for key, partition in partitions.items():
            if not partition.known:
                continue  # its stored offset is not read yet
            lag = partition_lag(*self._watermarks(key), partition.stored)
            if lag is not None:
                OWNED_LAG.labels(key[0], str(key[1])).set(lag)
                self._shown.add(key)

    def forget(self, keys: Iterable[PartitionKey]) -> None:
        """Partitions that left this member (revoked or lost): their lag is another's now."""
        for key in keys:
            if key in self._shown:
                OWNED_LAG.remove(key[0], str(key[1]))
                self._shown.discard(key)
