"""The batch being written, and what the loop does next when writing it fails.

`decide` is the whole retry policy as one pure function (unit-tested): a failure, the part of
the batch that failed and the counts so far → the next step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.loop.batch import Item
from shared.loop.contract import LoopOptions, PartitionKey, Record
from shared.loop.failures import Action


@dataclass
class PendingBatch:
    """What is left to write of the batch last consumed, in arrival order."""

    items: list[Item] = field(default_factory=list)
    part: int = 0  # how many items the next attempt writes
    size: int = 0  # the batch's size when consumed: the base of the dead-letter allowance
    poisoned: int = 0  # its messages dead-lettered on the database's word
    failures: int = 0  # consecutive transient failures: the backoff's exponent
    retry_at: float = 0.0  # monotonic time of the next attempt

    @classmethod
    def of(cls, items: list[Item]) -> PendingBatch:
        return cls(items, len(items), len(items))

    def __bool__(self) -> bool:
        return bool(self.items)

    def next_part(self) -> list[Item]:
        return self.items[: self.part or len(self.items)]

    def written(self, count: int) -> None:
        """The first `count` items committed: the next part may be twice as large again."""
        del self.items[:count]
        self.part = min(len(self.items), 2 * max(self.part, 1))
        self.failures = 0

    def drop(self, keys: Sequence[PartitionKey]) -> None:
        """Forget the items of partitions this member no longer owns."""
        gone = set(keys)
        self.items = [i for i in self.items if (i.topic, i.partition) not in gone]
        self.part = min(self.part, len(self.items))

    def partitions(self) -> list[PartitionKey]:
        return sorted({(item.topic, item.partition) for item in self.items})


@dataclass(frozen=True)
class Step:
    """What to do after a failed write."""

    wait_s: float = 0.0  # before the next attempt (0: right after one more poll)
    red: str | None = None  # health reason while waiting (None: not worth red)
    part: int | None = None  # the next attempt writes this many items (None: the same)
    dead_letter: bool = False  # the part's one item becomes a dead letter, with the reason
    drop: bool = False  # fenced: drop the batch, re-position its partitions


def decide(
    action: Action,
    reason: str,
    part: Sequence[Item],
    batch: PendingBatch,
    poisoned_in_row: int,
    options: LoopOptions,
) -> Step:
    """The next step after writing `part` (the first items of `batch`) failed with `action`."""
    if action is Action.FENCED:
        return Step(drop=True)
    if action in (Action.DATA, Action.HALVE) and len(part) > 1:
        # A data error: find the message by halving until it stands alone. A statement timeout:
        # the same batch in smaller transactions.
        return Step(part=len(part) // 2)
    if action is Action.DATA:
        # At least the in-row limit: a small batch's share (0.1 of a batch of two) would stop at
        # its first rejected message and pause on the second for good.
        allowance = max(options.poison_max_in_row, int(options.poison_max_share * batch.size))
        if (
            isinstance(part[0], Record)
            and batch.poisoned < allowance
            and poisoned_in_row < options.poison_max_in_row
        ):
            return Step(dead_letter=True)
        return Step(
            wait_s=options.refused_retry_s,
            red=f"PostgreSQL rejects message after message ({reason}): paused rather than "
            f"dead-letter good data; retrying every {options.refused_retry_s:g}s",
        )
    if action is Action.REFUSED:
        return Step(
            wait_s=options.refused_retry_s,
            red=f"PostgreSQL refused the batch: {reason}; paused, retrying every "
            f"{options.refused_retry_s:g}s",
        )
    # RETRY, or HALVE of a single message: wait, doubling the wait each time.
    backoff = options.db_retry_s * 2 ** min(batch.failures, 10)
    return Step(
        wait_s=min(options.retry_max_s, backoff),
        red=f"PostgreSQL unavailable or busy, consumption paused: {reason}",
    )
