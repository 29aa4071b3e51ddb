"""The loop's contract with a service: decoded records, the effects of a batch, the handler.

A handler is three steps around one pure function:

- `decode(message)` turns one message into a value, or raises SchemaError / ValidationError
  (the message becomes a dead letter; the batch goes on);
- `load(conn, partitions)` reads the committed state of partitions this member now owns (the
  *load step*: every read a handler needs happens here, never while processing);
- `process(records, states) -> Effects` is pure: it reads the states, never changes them in
  place, and returns the rows to write and the partitions' new states, so a batch that is rolled
  back, retried or bisected is processed again from the same states with the same result;
- `write(conn, effects)` is the store: it writes the effects inside the loop's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from confluent_kafka import Message

# (topic, partition): how the loop names a partition everywhere.
PartitionKey = tuple[str, int]


# Not frozen: one is made per message, and a frozen dataclass's __init__ (one
# object.__setattr__ per field) took 1.0 µs against 0.24 — 4% of the analytics consumer's time a
# bar when draining. Nothing changes a record once built.
@dataclass(slots=True)
class Record:
    """A decoded message with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: Any
    timestamp_ms: int
    raw: bytes | None = None  # the message as it came, for a dead letter if the database refuses it


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message stored in dead_letters instead of processed, with the reason."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes | None
    reason: str
    # The reason's class, a bounded metric label: schema, validation, value (decoding), database
    # (refused by PostgreSQL, found by halving) or handler (the handler's own verdict).
    kind: str = "handler"


@dataclass(frozen=True)
class Effects:
    """What one batch does: `rows` for the handler's store, the new state of every partition
    the batch touched (replacing the old one once the transaction commits), dead letters."""

    rows: Any = None
    states: Mapping[PartitionKey, Any] = field(default_factory=dict)
    rejected: Sequence[Rejected] = ()
    # How many of the records these effects cover (None: all). A handler that must bound the
    # work of one transaction stops early; the loop writes the rest as the next part.
    consumed: int | None = None


@dataclass(frozen=True)
class LoopOptions:
    """How one member runs (from ConsumerSettings; see .env.example for each one's meaning)."""

    group_id: str
    service: str
    batch_size: int
    poll_timeout_s: float
    db_retry_s: float  # first backoff after a transient failure
    pool_wait_s: float  # how long a database connection is waited for (CONSUMER_POOL_WAIT_S)
    # How long a request to the broker may take (a partition's log start, asked for the first
    # batch of a group with no stored offset): KAFKA_CONNECT_TIMEOUT_S.
    broker_timeout_s: float
    retry_max_s: float  # the backoff's cap
    refused_retry_s: float  # how often a refused batch (or unrestorable state) is retried
    poison_max_share: float  # dead letters the database asks for, at most this share of a batch
    poison_max_in_row: int  # ... and at most this many with nothing stored between them


class Handler:
    """What a service plugs into the loop (stateless handlers keep the default `load`)."""

    # Whether the loop may write a batch on its writer thread while it processes the next one
    # (flight.py). Such a handler's `write` and `finish` run on that thread, beside `process`
    # and `decode` on the loop's: they must share no mutable state with them.
    pipelined: bool = False
    # Whether `process` accepts `in_place=True` (pipelined handlers only): then it may change
    # the states it is given instead of copying them. The loop asks for it only for a batch it
    # writes in flight, and reads the states of that batch's partitions again from the database
    # whenever such a batch is not committed after all (its process raised, it covered only a
    # prefix, or it was processed while the batch in flight before it failed). Every other
    # call (retries, halving, sweeps) gets states that must stay as they are.
    in_place: bool = False

    def decode(self, message: Message) -> Any:
        """Decode one message; raise SchemaError or ValidationError to dead-letter it."""
        raise NotImplementedError

    def load(
        self, conn: psycopg.Connection, partitions: Sequence[PartitionKey]
    ) -> dict[PartitionKey, Any]:
        """The committed state of each partition (a missing one starts empty: None).

        A state that exists but cannot be restored raises StateRestoreError: that partition
        stays paused with the reason, the others go on."""
        return {}

    def process(self, records: Sequence[Record], states: Mapping[PartitionKey, Any]) -> Effects:
        """Pure: the effects of `records` given the partitions' committed `states` (a handler
        with `in_place` also takes `in_place=True`: see there)."""
        raise NotImplementedError

    def write(self, conn: psycopg.Connection, effects: Effects) -> None:
        """Write `effects` inside the caller's transaction (no commit here)."""
        raise NotImplementedError

    def committed(self, effects: Effects, committed_at_ms: float) -> None:
        """Called once the transaction that wrote `effects` committed (metrics only)."""

    def sweep_due(self) -> bool:
        """Whether the handler has work on every partition's state that no message brings (the
        alert rules were reloaded: machines of removed rules must resolve now, not on their
        series' next bar). The loop then calls `process([], states)` with the state of every
        partition it consumes, between batches, and writes the effects like a batch's — with
        ownership checked, and no offset moved. Checked only when no batch is pending."""
        return False

    def finish(self, conn: psycopg.Connection, effects: Effects) -> None:
        """The transaction's last statements, after the offsets and right before COMMIT: for
        locks that must be held as briefly as possible (alert ids that become visible in id
        order). Nothing by default."""
