"""The loop itself: consume a batch, write it (in parts when it must), act on what failed.

Normal path: poll → build the batch → one transaction (commit.py) → next. When a write fails,
the failure is classified (failures.py) and `pending.decide` picks the next step: the member
goes on hold (every partition paused, poll() still called so the group keeps it) and writes the
same batch again — after a backoff (transient), in halves (statement timeout; a data error,
down to the one message that is then dead-lettered), or slowly with health red (refused). A
fence drops the batch and re-positions its partitions.

A pipelined handler's batch is written on the writer thread while the loop polls and
processes the next one (flight.py); a batch in flight that fails is retried the way above, on
the loop's thread, and the batch processed meanwhile is dropped and read again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence

from confluent_kafka import Consumer, Message
from psycopg_pool import ConnectionPool

from shared.health import Health
from shared.loop import batch as batches
from shared.loop import failpoints
from shared.loop.broker_watch import BrokerWatch
from shared.loop.commit import Committed, Prepared, commit_prepared, prepare
from shared.loop.contract import Handler, LoopOptions, PartitionKey
from shared.loop.failures import classify, describe
from shared.loop.figures import count_committed
from shared.loop.flight import Flight, Writer
from shared.loop.kafka_errors import on_message_error
from shared.loop.owned_lag import OwnedLag, cached_watermarks
from shared.loop.ownership import Ownership
from shared.loop.pending import PendingBatch, decide
from shared.loop.sweeper import Sweeper
from shared.metrics import (
    BATCH_RETRIES,
    FENCED_BATCHES,
    REFUSED_POSITIONS,
    REREAD_BATCHES,
    WRITE_SECONDS,
)

logger = logging.getLogger(__name__)


class ConsumerLoop:
    """Runs one consumer group member until `stop` is set."""

    def __init__(
        self,
        consumer: Consumer,
        pool: ConnectionPool,
        topics: Sequence[str],
        handler: Handler,
        options: LoopOptions,
        health: Health,
        broker: BrokerWatch | None = None,
    ) -> None:
        self._consumer = consumer
        self._broker = broker
        self._pool = pool
        self._topics = list(topics)
        self._handler = handler
        self._options = options
        self._health = health
        # This member's token in consumer_offsets.owner.
        self._owner = f"{options.service}:{uuid.uuid4().hex}"
        self._own = Ownership(
            consumer,
            pool,
            handler,
            group=options.group_id,
            owner=self._owner,
            health=health,
            db_timeout_s=options.pool_wait_s,
            broker_timeout_s=options.broker_timeout_s,
        )
        self._own.on_leave = self._drop
        self._lag = OwnedLag(cached_watermarks(consumer))
        self._batch = PendingBatch()
        self._poisoned_in_row = 0  # dead-lettered on the database's word since a record stored
        self._next_recovery = 0.0
        self._sweeper = Sweeper(pool, handler, self._own, options, self._owner)
        self._writer = (
            Writer(f"{options.service}-writer", self._commit) if handler.pipelined else None
        )
        self._flight: Flight | None = None
        # A flight that failed while landing inside a rebalance callback: handled (retried)
        # once poll() returns, never inside the callback.
        self._crashed: tuple[Prepared, Exception] | None = None
        self._own.before_rebalance = self._land

    def run(self, stop: threading.Event) -> None:
        self._own.sync()  # /readyz: not ready until the group gives us an assignment
        self._consumer.subscribe(
            self._topics,
            on_assign=self._own.on_assign,
            on_revoke=self._own.on_revoke,
            on_lost=self._own.on_lost,
        )
        try:
            while not stop.is_set():
                failpoints.reached("before_poll", consumer=self._consumer)
                if self._flight is not None:
                    if self._sweeper.due() or self._recovery_due():
                        self._settle()
                    else:
                        self._fly()
                elif self._batch:
                    self._idle()
                    if self._batch and time.monotonic() >= self._batch.retry_at:
                        self._attempt()
                elif self._sweeper.due():
                    self._sweeper.run()
                else:
                    messages = self._consume()
                    if messages:
                        self._start(messages)
                if self._flight is None:
                    self._recover_if_due()
                self._lag.refresh(self._own.partitions)
                if self._broker is not None:
                    self._broker.check(self._consumer)
        finally:
            # A batch in flight commits (or fails: read again at the next start) before the
            # member leaves.
            self._land()
            if self._writer is not None:
                self._writer.close()
            # close() leaves the group at once, so partitions move without waiting for
            # session.timeout.ms; there is no Kafka commit to make (offsets live in Postgres).
            self._consumer.close()

    # -- consuming -----------------------------------------------------------------------

    def _consume(self, wait: bool = True) -> list[Message]:
        # poll() returns as soon as one message is there (low latency at low rates); consume()
        # with timeout 0 then takes what is already fetched (large batches under load).
        first = self._consumer.poll(self._options.poll_timeout_s if wait else 0)
        if first is None:
            return []
        rest = self._consumer.consume(self._options.batch_size - 1, timeout=0)
        return [first, *rest]

    def _idle(self) -> None:
        """Poll while a batch waits: the group sees us alive and rebalance callbacks run."""
        wait = self._batch.retry_at - time.monotonic()
        message = self._consumer.poll(min(self._options.poll_timeout_s, max(0.0, wait)))
        if message is None:
            return
        if message.error() is not None:
            self._on_kafka_error(message)
        else:
            # Fetched before the pause took effect: skipped, so the next batch of that
            # partition does not start at its stored offset and is re-positioned.
            key = f"{message.topic()}[{message.partition()}]@{message.offset()}"
            logger.debug("skipped %s while on hold", key)

    def _start(self, messages: list[Message]) -> None:
        batch = batches.build(messages, self._handler, self._own, self._on_kafka_error)
        self._refuse(batch.refused)
        if batch.items:
            self._write_new(batch.items, self._prepare(batch.items))

    def _refuse(self, refused: dict[PartitionKey, int]) -> None:
        for key, first in refused.items():
            REFUSED_POSITIONS.inc()
            logger.warning(
                "batch of %s[%d] starts at %d but the stored offset is %s: refused, "
                "re-positioned (nothing committed past a gap)",
                *key,
                first,
                self._own.partitions[key].stored,
            )
        if refused:
            self._own.reposition(list(refused), reclaim=False)

    def _prepare(self, items: list[batches.Item]) -> Prepared | None:
        """A new batch processed for a flight (None: not pipelined, or the handler raised —
        then the usual path processes it again and deals with what it raises). A handler with
        `in_place` changes the states as it goes: see `_write_new` and `_fly`."""
        if self._writer is None:
            return None
        try:
            return prepare(self._handler, self._own, items, in_place=self._handler.in_place)
        except Exception:  # noqa: BLE001 (re-raised by the same process() in _attempt)
            return None

    def _write_new(self, items: list[batches.Item], prepared: Prepared | None) -> None:
        """A batch nothing is pending before (nor in flight): in flight when it can, else
        written here."""
        if prepared is not None and prepared.complete:
            self._flight = Flight.launch(prepared, self._own, self._writer)
            return
        if self._writer is not None and self._handler.in_place:
            # Processed in place (perhaps part way, if it raised) but not flying: the usual
            # path must start from the committed states.
            items = self._read_states_again(items)
            if not items:
                return
        self._batch = PendingBatch.of(items)
        self._attempt()

    def _read_states_again(
        self, items: list[batches.Item], keys: set[PartitionKey] | None = None
    ) -> list[batches.Item]:
        """The committed states of `keys` (by default the items' partitions), read again from
        the database; returns the items still owned and of a partition whose state is known (one
        it could not read awaits PostgreSQL and is read again from its stored offset once it
        answers: Ownership.reload)."""
        if keys is None:
            keys = {(item.topic, item.partition) for item in items}
        self._own.reload(sorted(keys))
        owned = self._own.partitions
        return [
            item
            for item in items
            if (key := (item.topic, item.partition)) in owned and owned[key].known
        ]

    # -- in flight (pipelined handlers) ----------------------------------------------------

    def _commit(self, prepared: Prepared) -> Committed:
        """The prepared batch's transaction (on the writer thread for a flight)."""
        return commit_prepared(
            self._pool,
            self._handler,
            prepared,
            service=self._options.service,
            group=self._options.group_id,
            owner=self._owner,
            db_timeout_s=self._options.pool_wait_s,
        )

    def _fly(self) -> None:
        """A batch is in flight: take what is already fetched and process it meanwhile; then
        land the flight and launch the new batch. Nothing fetched: just land it."""
        messages = self._consume(wait=False)
        if self._flight is None:  # landed in a rebalance callback inside poll()
            if self._crashed is not None:
                self._retry_crashed(messages)
            elif messages:
                self._start(messages)
            return
        if not messages:
            self._settle()
            return
        batch = batches.build(messages, self._handler, self._own, self._on_kafka_error)
        prepared = self._prepare(batch.items) if batch.items else None
        # Landed before any state is read again: the flight's states, which this batch may have
        # changed in place, would otherwise replace the ones read.
        self._land()
        if self._crashed is None:
            # Landed: the memory the batch was processed against is now committed.
            self._refuse(batch.refused)
            if batch.items:
                self._write_new(batch.items, prepared)
            return
        # The flight failed: its batch is retried first, on this thread; this one is read again
        # (and the states it changed in place with it).
        changed = batch.items if self._handler.in_place else []
        self._retry_crashed(messages, {(item.topic, item.partition) for item in changed})

    def _settle(self) -> None:
        """Land the flight; if it failed, retry its batch the usual way."""
        self._land()
        self._retry_crashed([])

    def _land(self) -> None:
        """Wait for the flight and apply its outcome to the member's memory; a failure is kept
        in `_crashed` for the loop to retry (this may run inside a rebalance callback)."""
        flight, self._flight = self._flight, None
        if flight is None:
            return
        try:
            landed = flight.wait()
        except Exception as exc:  # noqa: BLE001 (classified by _failed once poll() returned)
            flight.undo(self._own)
            self._crashed = (flight.prepared, exc)
            return
        # The memory has shown its outcome since the launch: applied again, the same.
        self._count(landed.done, landed.committed_at_ms, landed.seconds)

    def _retry_crashed(
        self, messages: list[Message], changed: set[PartitionKey] | None = None
    ) -> None:
        """The flight that failed: its batch (what is still owned of it) becomes the pending
        batch and its failure is handled as `_attempt` handles one; `messages` read since are
        put back to be read again after it, and the states of `changed` (processed in place
        with them) are read again too."""
        crashed, self._crashed = self._crashed, None
        if crashed is None:
            return
        prepared, exc = crashed
        if messages:
            REREAD_BATCHES.inc()
            firsts: dict[PartitionKey, int] = {}
            for message in messages:
                if message.error() is None:
                    firsts.setdefault((message.topic(), message.partition()), message.offset())
            self._own.rewind(firsts)
        # The memory holds the failed batch's states: read the committed ones again. A partition
        # whose state cannot be read now awaits PostgreSQL; its messages are read again later.
        items = self._read_states_again(
            prepared.items, set(prepared.effects.states) | (changed or set())
        )
        if not items:
            return
        self._batch = PendingBatch.of(items)
        self._failed(items, exc)

    def _recovery_due(self) -> bool:
        return time.monotonic() >= self._next_recovery and self._own.needs_recovery()

    def _drop(self, keys: list[PartitionKey]) -> None:
        """Partitions left this member (revoked or lost): their items are not ours to write."""
        self._lag.forget(keys)
        self._batch.drop(keys)
        if not self._batch:
            self._release()

    # -- writing -------------------------------------------------------------------------

    def _attempt(self) -> None:
        part = self._batch.next_part()
        started = time.perf_counter()
        try:
            done = self._commit(prepare(self._handler, self._own, part))
        except Exception as exc:  # noqa: BLE001 (the loop boundary: classified, counted, logged)
            self._failed(part, exc)
            return
        self._count(done, time.time() * 1000, time.perf_counter() - started)
        self._batch.written(done.written)
        if self._batch:
            # The rest of the batch right after one more poll, with every partition paused so
            # that poll fetches nothing past what is pending.
            self._hold()
            self._batch.retry_at = time.monotonic()
        else:
            self._release()

    def _count(self, done: Committed, committed_at_ms: float, seconds: float) -> None:
        """A transaction committed: the member's memory moves, then the figures."""
        self._own.committed(done.ends, done.states)
        if done.records:
            self._poisoned_in_row = 0
        WRITE_SECONDS.observe(seconds)
        count_committed(done, committed_at_ms)
        self._handler.committed(done.effects, committed_at_ms)
        failpoints.reached("after_commit")

    def _hold(self) -> None:
        """Pause every partition until the pending batch is written."""
        if not self._own.hold:
            self._own.hold = True
            self._own.sync()

    def _release(self) -> None:
        """The batch is written (or gone): consume again."""
        self._batch = PendingBatch()
        if self._own.hold:
            self._own.hold = False
            self._own.sync()
            self._health.green("postgres")

    def _failed(self, part: list[batches.Item], exc: Exception) -> None:
        action = classify(exc)
        BATCH_RETRIES.labels(action.value).inc()
        reason = describe(exc)
        step = decide(action, reason, part, self._batch, self._poisoned_in_row, self._options)
        if step.drop:
            FENCED_BATCHES.inc()
            logger.warning("batch dropped: %s", reason)
            keys = self._batch.partitions()
            self._release()
            self._own.reposition(keys, reclaim=True)
            return
        self._hold()
        if step.part is not None:
            logger.info(
                "writing %d message(s) failed (%s): trying %d", len(part), reason, step.part
            )
            self._batch.part = step.part
        if step.dead_letter:
            item = part[0]
            self._batch.items[0] = batches.rejected_by_database(
                item, f"rejected by PostgreSQL: {reason}"
            )
            self._batch.poisoned += 1
            self._poisoned_in_row += 1
            logger.warning(
                "%s[%d]@%d dead-lettered: rejected by PostgreSQL: %s",
                item.topic,
                item.partition,
                item.offset,
                reason,
            )
        if step.red is not None:
            self._batch.failures += 1
            self._health.red("postgres", step.red)  # logged once per change of reason
        self._batch.retry_at = time.monotonic() + step.wait_s

    # -- recovery ------------------------------------------------------------------------

    def _recover_if_due(self) -> None:
        if not self._recovery_due():
            return
        now = time.monotonic()
        try:
            self._own.recover()
        except Exception as exc:  # noqa: BLE001 (retried; health says why)
            self._next_recovery = now + self._options.db_retry_s
            logger.debug("recovery failed: %s", describe(exc))
            return
        # What is still to recover is an unrestorable state: that is retried slowly.
        self._next_recovery = now + self._options.refused_retry_s

    def _on_kafka_error(self, message: Message) -> None:
        on_message_error(message, self._own.is_awaiting, self._health)
