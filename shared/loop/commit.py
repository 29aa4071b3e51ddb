"""The one transaction of a batch (or a part of one), and the order of its steps.

1. `handler.process(records, states)` — pure, before the transaction opens (no lock is held
   while the batch is computed).
2. BEGIN
3. `handler.write(conn, effects)` — the results and the new states.
4. dead letters (decoded-rejected messages and those the handler rejected).
5. failpoint `after_copy`.
6. the offsets, compare-and-set (offsets.ADVANCE_OFFSETS): late, so their row locks are held
   for a short time and a new owner's claim waits at most for this COMMIT.
7. `handler.finish`: statements that must come last (the alert inserts' advisory lock).
8. COMMIT — results, dead letters, states and offsets become visible together, or (on any
   exception, a fence included) not at all.
9. only then does the member's memory move: stored offsets and states (Ownership.committed).
   A batch written in flight (flight.py) shows them from its launch, so the next batch can be
   processed meanwhile, and takes them back if its transaction fails.

`prepare` is step 1, `commit_prepared` steps 2–8 (which touch nothing of the member's memory).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from shared.loop import failpoints
from shared.loop.batch import Item, sort_out
from shared.loop.contract import Effects, Handler, PartitionKey, Record, Rejected
from shared.loop.direct_copy import WriteAgain
from shared.loop.offsets import (
    advance_offsets,
    dead_letter_rows,
    hold_owned,
    insert_dead_letters,
)
from shared.loop.ownership import Ownership

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Committed:
    records: list[Record]
    ends: dict[PartitionKey, int]
    firsts: dict[PartitionKey, int]
    states: dict[PartitionKey, Any]
    written: int  # how many of the items given were written (fewer when the handler stopped)
    effects: Effects
    rejected: list[Rejected]  # the dead letters committed (decode-rejected and the handler's)


@dataclass(frozen=True)
class Prepared:
    """A batch processed (step 1) and ready for its transaction (steps 2–8)."""

    items: list[Item]  # the items the transaction writes (a prefix when the handler stopped)
    records: list[Record]
    effects: Effects
    letters: list[Rejected]  # dead letters: decode-rejected and the handler's
    firsts: dict[PartitionKey, int]
    ends: dict[PartitionKey, int]
    expected: dict[PartitionKey, int | None]  # the stored offsets the compare-and-set expects
    complete: bool  # the handler covered every record it was given


def prepare(
    handler: Handler, ownership: Ownership, items: Sequence[Item], *, in_place: bool = False
) -> Prepared:
    """Step 1: `handler.process` over the partitions' states and stored offsets as the member
    holds them now (`in_place`: the handler may change those states, Handler.in_place)."""
    records, rejected, firsts, ends = sort_out(items)
    partitions = ownership.partitions
    states = {key: partitions[key].state for key in ends}
    if in_place:
        effects = handler.process(records, states, in_place=True)
    else:
        effects = handler.process(records, states)
    failpoints.reached("after_process", in_place=in_place)
    complete = effects.consumed is None or effects.consumed >= len(records)
    if not complete:
        # The handler covered a prefix: write up to its last record (and the dead letters
        # before it); the rest stays pending.
        records = records[: effects.consumed]
        last = records[-1] if records else None
        items = items[: items.index(last) + 1] if last is not None else []
        _, rejected, firsts, ends = sort_out(items)
    expected = {key: partitions[key].stored for key in ends}
    letters = [*rejected, *effects.rejected]
    return Prepared(list(items), records, effects, letters, firsts, ends, expected, complete)


def commit_prepared(
    pool: ConnectionPool,
    handler: Handler,
    prepared: Prepared,
    *,
    service: str,
    group: str,
    owner: str,
    db_timeout_s: float,
) -> Committed:
    """Steps 2–8 for a prepared batch; raises whatever ended the transaction. Touches nothing
    of the member's memory (the loop may run it on its writer thread)."""
    effects = prepared.effects

    def steps(conn: psycopg.Connection) -> None:
        handler.write(conn, effects)
        if prepared.letters:
            insert_dead_letters(conn, dead_letter_rows(service, prepared.letters))
        failpoints.reached("after_copy")
        advance_offsets(conn, group, owner, prepared.expected, prepared.firsts, prepared.ends)
        handler.finish(conn, effects)

    in_transaction(lambda: pool.connection(timeout=db_timeout_s), steps)
    return Committed(
        prepared.records,
        prepared.ends,
        prepared.firsts,
        dict(effects.states),
        len(prepared.items),
        effects,
        prepared.letters,
    )


def write_sweep(
    pool: ConnectionPool,
    handler: Handler,
    ownership: Ownership,
    *,
    group: str,
    owner: str,
    db_timeout_s: float,
) -> Committed:
    """The handler's sweep (`Handler.sweep_due`) over every partition whose state is loaded, in
    one transaction: the states and rows it writes, the owned offset rows locked and checked
    (none moves), `handler.finish`, COMMIT."""
    partitions = {
        key: partition
        for key, partition in ownership.partitions.items()
        if partition.known and "unrestorable" not in partition.pauses
    }
    effects = handler.process([], {key: partition.state for key, partition in partitions.items()})

    def steps(conn: psycopg.Connection) -> None:
        if partitions:
            hold_owned(conn, group, owner, {key: p.stored for key, p in partitions.items()})
        handler.write(conn, effects)
        handler.finish(conn, effects)

    in_transaction(lambda: pool.connection(timeout=db_timeout_s), steps)
    return Committed([], {}, {}, dict(effects.states), 0, effects, [])


def in_transaction(
    connection: Callable[[], AbstractContextManager[psycopg.Connection]],
    steps: Callable[[psycopg.Connection], None],
) -> None:
    """`steps` in one transaction on a `connection()`, COMMITted; run again once, in a new
    transaction, when the handler asks for it (WriteAgain: the first try was rolled back)."""
    for again in (False, True):
        try:
            with connection() as conn, conn.transaction():
                steps(conn)
        except WriteAgain:
            if again:
                raise
            logger.debug("batch written again: its direct COPY met a stored row")
        else:
            return
