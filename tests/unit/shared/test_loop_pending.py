"""The retry policy (`decide`) and the pending batch, on plain lists."""

from __future__ import annotations

from shared.loop.contract import LoopOptions, Record, Rejected
from shared.loop.failures import Action
from shared.loop.pending import PendingBatch, decide

OPTIONS = LoopOptions(
    group_id="g",
    service="s",
    batch_size=100,
    poll_timeout_s=0.5,
    db_retry_s=1.0,
    pool_wait_s=1.0,
    broker_timeout_s=15.0,
    retry_max_s=8.0,
    refused_retry_s=30.0,
    poison_max_share=0.1,
    poison_max_in_row=3,
)


def records(n: int, partition: int = 0) -> list[Record | Rejected]:
    return [Record("t", partition, i, None, i, 0) for i in range(n)]


def test_data_errors_halve_down_to_one_message_then_dead_letter_it() -> None:
    batch = PendingBatch.of(records(40))
    assert decide(Action.DATA, "x", batch.items, batch, 0, OPTIONS).part == 20
    assert decide(Action.DATA, "x", batch.items[:3], batch, 0, OPTIONS).part == 1
    step = decide(Action.DATA, "x", batch.items[:1], batch, 0, OPTIONS)
    assert step.dead_letter and step.wait_s == 0 and step.red is None


def test_dead_letters_are_capped_by_share_and_by_run() -> None:
    batch = PendingBatch.of(records(40))  # share 0.1 of 40: at most 4
    batch.poisoned = 4
    step = decide(Action.DATA, "x", batch.items[:1], batch, 0, OPTIONS)
    assert not step.dead_letter and step.wait_s == 30 and "rather than dead-letter" in step.red
    batch.poisoned = 0
    assert not decide(Action.DATA, "x", batch.items[:1], batch, 3, OPTIONS).dead_letter
    small = PendingBatch.of(records(1))  # a batch of one may still lose its poison message
    assert decide(Action.DATA, "x", small.items, small, 0, OPTIONS).dead_letter


def test_a_dead_letter_the_database_refuses_pauses_instead_of_looping() -> None:
    letter = Rejected("t", 0, 0, None, b"", "why")
    batch = PendingBatch.of([letter])
    assert decide(Action.DATA, "x", batch.items, batch, 0, OPTIONS).wait_s == 30


def test_transient_failures_back_off_doubling_to_the_cap_and_never_dead_letter() -> None:
    batch = PendingBatch.of(records(10))
    waits = []
    for failures in range(6):
        batch.failures = failures
        step = decide(Action.RETRY, "LockNotAvailable", batch.items, batch, 0, OPTIONS)
        assert not step.dead_letter and step.part is None
        waits.append(step.wait_s)
    assert waits == [1, 2, 4, 8, 8, 8]
    assert "LockNotAvailable" in step.red


def test_statement_timeout_halves_and_refusals_wait_slowly() -> None:
    batch = PendingBatch.of(records(10))
    assert decide(Action.HALVE, "QueryCanceled", batch.items, batch, 0, OPTIONS).part == 5
    assert decide(Action.HALVE, "QueryCanceled", batch.items[:1], batch, 0, OPTIONS).wait_s == 1
    refused = decide(Action.REFUSED, "InsufficientPrivilege", batch.items, batch, 0, OPTIONS)
    assert refused.wait_s == 30 and "refused" in refused.red and not refused.dead_letter
    assert decide(Action.FENCED, "moved", batch.items, batch, 0, OPTIONS).drop


def test_pending_batch_parts_and_partitions() -> None:
    batch = PendingBatch.of(records(4, 0) + records(4, 1))
    batch.part = 2
    assert [i.offset for i in batch.next_part()] == [0, 1]
    batch.written(2)
    assert batch.part == 4 and len(batch.items) == 6
    batch.drop([("t", 0)])
    assert batch.partitions() == [("t", 1)] and batch.part == 4
    batch.drop([("t", 1)])
    assert not batch


def test_a_small_batch_of_poison_messages_is_dead_lettered_not_stalled() -> None:
    """Two rejected messages in a batch of two: the share (0.1 of 2) allowed only the first,
    and the second paused the member for good (the pending batch kept its count on every retry).
    A small batch may lose as many as the in-row limit allows."""
    batch = PendingBatch.of(records(2))
    batch.poisoned = 1
    assert decide(Action.DATA, "x", batch.items[1:], batch, 1, OPTIONS).dead_letter
    batch.poisoned = 3
    assert not decide(Action.DATA, "x", batch.items[1:], batch, 1, OPTIONS).dead_letter
