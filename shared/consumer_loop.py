"""The one exactly-once consumer loop: results, dead letters and offsets in one transaction.

Each batch: consume → decode each message (bad ones become dead letters, never crash the
batch) → hand the good ones to the handler → in ONE PostgreSQL transaction write the results,
the dead letters and the offsets the batch ends at, the offsets as a compare-and-set against
the offsets the batch started from. Kafka's own offset commit is never used: the stored
offsets are the only truth and are handed to `incremental_assign` when partitions arrive.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from psycopg_pool import ConnectionPool, PoolTimeout

from shared.consumer_handler import Handler, Record, Rejected
from shared.db import first_line, make_pool
from shared.errors import SchemaError, UpgradeNeededError, ValidationError
from shared.health import Health
from shared.kafka import make_consumer
from shared.loop_store import (
    FencedError,
    advance_offsets,
    claim_partitions,
    insert_dead_letters,
    read_offsets,
)
from shared.metrics import COMMIT_LATENCY, DEAD_LETTERS, FENCED_BATCHES, MESSAGES
from shared.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class _Partition:
    # The next offset stored in consumer_offsets (None: nothing yet, start from the beginning).
    stored: int | None
    paused_for_upgrade: bool = False


@dataclass
class LoopOptions:
    group_id: str
    service: str
    batch_size: int
    poll_timeout_s: float
    db_retry_s: float
    failpoint: str = ""
    stall_s: float = 0.0


class ExactlyOnceLoop:
    """Runs one consumer group member until `stop` is set."""

    def __init__(
        self,
        consumer: Consumer,
        pool: ConnectionPool,
        topics: Sequence[str],
        handler: Handler,
        options: LoopOptions,
        health: Health,
    ) -> None:
        self._consumer = consumer
        self._pool = pool
        self._topics = list(topics)
        self._handler = handler
        self._options = options
        self._health = health
        self._owned: dict[tuple[str, int], _Partition] = {}
        # Partitions assigned while Postgres was down: their stored offsets are still unknown.
        self._awaiting_offsets: set[tuple[str, int]] = set()
        self._db_down = False
        self._stalled = False
        # This member's token in consumer_offsets.owner (see loop_store.CLAIM_PARTITIONS).
        self._owner = f"{options.service}:{uuid.uuid4().hex}"

    # -- rebalance callbacks (run inside consume()) ---------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            stored = self._claim([(tp.topic, tp.partition) for tp in partitions])
        except (psycopg.OperationalError, PoolTimeout) as exc:
            # Assign, but hold them paused until Postgres answers and their offsets are known.
            self._mark_db_down(exc)
            consumer.incremental_assign(partitions)
            consumer.pause(partitions)
            self._awaiting_offsets.update((tp.topic, tp.partition) for tp in partitions)
            return
        to_assign = []
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            self._owned[(tp.topic, tp.partition)] = _Partition(offset)
            start = OFFSET_BEGINNING if offset is None else offset
            to_assign.append(TopicPartition(tp.topic, tp.partition, start))
        # Stored offsets are handed to the assignment itself (no seek inside the callback).
        consumer.incremental_assign(to_assign)
        logger.info("assigned %s", _describe(to_assign))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Batches are written synchronously between consume() calls, so when a revoke arrives
        # everything already read is committed (or rolled back): nothing is left to commit here.
        self._forget(partitions)
        consumer.incremental_unassign(partitions)
        logger.info("revoked %s", _describe(partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost means someone else may own them already: never commit, just forget.
        self._forget(partitions)
        consumer.incremental_unassign(partitions)
        logger.warning("lost %s", _describe(partitions))

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._owned.pop((tp.topic, tp.partition), None)
            self._awaiting_offsets.discard((tp.topic, tp.partition))
        self._handler.forget([(tp.topic, tp.partition) for tp in partitions])

    # -- main loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe(
            self._topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            while not stop.is_set():
                if self._db_down or self._awaiting_offsets:
                    self._wait_for_db(stop)
                    continue
                messages = self._consume()
                if messages:
                    self._handle_batch(messages)
        finally:
            # close() leaves the group at once, so the partitions move without waiting for
            # session.timeout.ms; there is no Kafka commit to make (offsets live in Postgres).
            self._consumer.close()

    def _consume(self) -> list[Message]:
        # poll() returns as soon as one message is there (low latency at low rates); consume()
        # with timeout 0 then takes what is already fetched (large batches under load).
        first = self._consumer.poll(self._options.poll_timeout_s)
        if first is None:
            return []
        rest = self._consumer.consume(self._options.batch_size - 1, timeout=0)
        return [first, *rest]

    def _handle_batch(self, messages: list[Message]) -> None:
        records: list[Record] = []
        rejected: list[Rejected] = []
        # First offset of each partition in this batch: where to rewind when the batch fails.
        starts: dict[tuple[str, int], int] = {}
        ends: dict[tuple[str, int], int] = {}
        blocked: set[tuple[str, int]] = set()
        for message in messages:
            if message.error() is not None:
                self._on_kafka_error(message.error())
                continue
            tp = (message.topic(), message.partition())
            if tp not in self._owned or tp in blocked:
                continue
            try:
                value = self._handler.decode(message)
            except UpgradeNeededError as exc:
                self._pause_for_upgrade(tp, message.offset(), exc)
                blocked.add(tp)
                continue
            except (SchemaError, ValidationError) as exc:
                rejected.append(_rejected(message, str(exc)))
                DEAD_LETTERS.labels(message.topic()).inc()
            else:
                records.append(
                    Record(
                        tp[0], tp[1], message.offset(), message.key(), value, message.timestamp()[1]
                    )
                )
            starts.setdefault(tp, message.offset())
            ends[tp] = message.offset() + 1
        if not ends:
            return
        try:
            self._commit(records, rejected, ends)
        except FencedError as exc:
            FENCED_BATCHES.inc()
            logger.warning("batch dropped: %s", exc)
            self._refresh_positions(list(ends))
            return
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self._mark_db_down(exc)
            self._rewind(starts)
            return
        committed_at_ms = time.time() * 1000
        for record in records:
            COMMIT_LATENCY.observe((committed_at_ms - record.timestamp_ms) / 1000)
        for (topic, _partition), end in ends.items():
            MESSAGES.labels(topic, "in").inc(end - starts[(topic, _partition)])
        self._failpoint("after_commit")

    def _commit(
        self,
        records: list[Record],
        rejected: list[Rejected],
        ends: dict[tuple[str, int], int],
    ) -> None:
        with self._pool.connection() as conn, conn.transaction():
            self._handler.write(conn, records)
            if rejected:
                insert_dead_letters(
                    conn,
                    [
                        (
                            self._options.service,
                            r.topic,
                            r.partition,
                            r.offset,
                            r.key,
                            r.payload,
                            r.reason,
                        )
                        for r in rejected
                    ],
                )
            self._failpoint("after_copy")
            expected = {tp: self._owned[tp].stored for tp in ends}
            advance_offsets(conn, self._options.group_id, self._owner, expected, ends)
            # Leaving the block COMMITs: results, dead letters and offsets become visible
            # together, or (on any exception) not at all.
        for tp, end in ends.items():
            self._owned[tp].stored = end

    # -- recovery -------------------------------------------------------------------------

    def _claim(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
        """Take ownership of newly assigned partitions; load their state; their offsets."""
        with self._pool.connection(timeout=self._options.db_retry_s) as conn:
            stored = claim_partitions(conn, self._options.group_id, self._owner, partitions)
            self._handler.load(conn, partitions)
            return stored

    def _read_offsets(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
        """The stored offsets of partitions we hold, with their committed state reloaded."""
        with self._pool.connection(timeout=self._options.db_retry_s) as conn:
            stored = read_offsets(conn, self._options.group_id, partitions)
            self._handler.load(conn, partitions)
            return stored

    def _refresh_positions(self, partitions: list[tuple[str, int]]) -> None:
        """Re-read the stored offsets of `partitions` we still own and seek there."""
        try:
            stored = self._read_offsets([tp for tp in partitions if tp in self._owned])
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self._mark_db_down(exc)
            return
        for tp in partitions:
            state = self._owned.get(tp)
            if state is None:
                continue
            state.stored = stored.get(tp)
            self._seek(tp, OFFSET_BEGINNING if state.stored is None else state.stored)

    def _rewind(self, starts: dict[tuple[str, int], int]) -> None:
        for tp, offset in starts.items():
            if tp in self._owned:
                self._seek(tp, offset)

    def _seek(self, tp: tuple[str, int], offset: int) -> None:
        try:
            self._consumer.seek(TopicPartition(tp[0], tp[1], offset))
        except KafkaException as exc:
            # Seek can fail while a fetch is being set up; re-reading the stored offsets on
            # the next assignment covers it. Logged because it should be rare.
            logger.warning("seek %s[%d] to %d failed: %s", tp[0], tp[1], offset, exc)

    def _mark_db_down(self, exc: BaseException) -> None:
        if not self._db_down:
            self._db_down = True
            self._consumer.pause(self._consumer.assignment())
        self._health.red(
            "postgres", f"PostgreSQL unavailable, consumption paused: {first_line(exc)}"
        )

    def _wait_for_db(self, stop: threading.Event) -> None:
        # Keep polling while paused: the group sees us alive (no rebalance storm) and
        # rebalance callbacks still run.
        self._consumer.poll(self._options.poll_timeout_s)
        if stop.wait(self._options.db_retry_s):
            return
        try:
            with self._pool.connection(timeout=self._options.db_retry_s) as conn:
                conn.execute("SELECT 1")
        except (psycopg.OperationalError, PoolTimeout):
            return
        waiting = list(self._awaiting_offsets)
        try:
            # Partitions assigned during the outage are claimed now; the ones we held before
            # keep their claim (claiming them again could take one back from its new owner).
            stored = {**self._read_offsets(list(self._owned)), **self._claim(waiting)}
        except (psycopg.OperationalError, PoolTimeout):
            return
        for tp in waiting:
            self._owned[tp] = _Partition(stored.get(tp))
        for tp, state in self._owned.items():
            state.stored = stored.get(tp)
            self._seek(tp, OFFSET_BEGINNING if state.stored is None else state.stored)
        self._awaiting_offsets.clear()
        self._db_down = False
        resumable = [
            TopicPartition(tp[0], tp[1])
            for tp, state in self._owned.items()
            if not state.paused_for_upgrade
        ]
        self._consumer.resume(resumable)
        self._health.green("postgres")
        logger.info("PostgreSQL is back; resumed %d partition(s)", len(resumable))

    def _pause_for_upgrade(self, tp: tuple[str, int], offset: int, exc: Exception) -> None:
        # Never dead-letter a newer schema: stop this partition where it is until upgraded.
        self._owned[tp].paused_for_upgrade = True
        self._consumer.pause([TopicPartition(tp[0], tp[1])])
        self._seek(tp, offset)
        self._health.red(f"upgrade:{tp[0]}[{tp[1]}]", f"upgrade needed: {exc} at offset {offset}")

    def _on_kafka_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.code() in (KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET):
            # The stored offset fell below the log start: records were deleted by retention
            # before we stored them. An alarm, never a silent reset.
            self._health.red("retention", f"retention gap: {error.str()}")
        logger.error("kafka error: %s", error.str())

    def _failpoint(self, name: str) -> None:
        if self._options.failpoint == name:
            logger.warning("failpoint %s: killing this process", name)
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(10)  # SIGKILL is asynchronous; never run past the failpoint
        elif self._options.failpoint == f"stall_{name}" and not self._stalled:
            self._stalled = True
            logger.warning("failpoint stall_%s: stalling %gs", name, self._options.stall_s)
            time.sleep(self._options.stall_s)


def run_consumer(
    settings: Settings,
    stop: threading.Event,
    health: Health,
    *,
    service: str,
    group_id: str,
    topics: Sequence[str],
    handler: Handler,
    configure: Callable[[psycopg.Connection], None],
) -> None:
    """One group member of `service` on `topics` until `stop`: the consumer, pool and loop."""
    consumer = make_consumer(
        settings.kafka,
        group_id,
        max_poll_interval_ms=settings.consumer.max_poll_interval_ms,
        session_timeout_ms=settings.consumer.session_timeout_ms,
    )
    with make_pool(settings.postgres, service, configure=configure) as pool:
        options = LoopOptions(
            group_id=group_id,
            service=service,
            batch_size=settings.consumer.batch_size,
            poll_timeout_s=settings.consumer.poll_timeout_s,
            db_retry_s=settings.consumer.db_retry_s,
            failpoint=settings.consumer.failpoint,
            stall_s=settings.consumer.failpoint_stall_s,
        )
        ExactlyOnceLoop(consumer, pool, topics, handler, options, health).run(stop)


def _rejected(message: Message, reason: str) -> Rejected:
    return Rejected(
        message.topic(),
        message.partition(),
        message.offset(),
        message.key(),
        message.value(),
        reason,
    )


def _describe(partitions: Sequence[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in partitions) or "nothing"
