"""Which partitions this member owns: rebalance callbacks, claims, positions, pause/resume.

The state machine of each partition is described in `partition.py`. A claim writes this
member's token into consumer_offsets.owner; a batch commits only while its owner token is
there. Claims happen in `on_assign` or, outside the rebalance callback, only for partitions
the poll() just before showed still assigned (`recover`, `reposition`), so a member that has
lost a partition never claims it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition
from psycopg_pool import ConnectionPool

from shared.health import Health
from shared.loop import failpoints
from shared.loop.claims import Claimed, claim, load_states
from shared.loop.contract import Handler, PartitionKey
from shared.loop.failures import describe
from shared.loop.partition import (
    Partition,
    describe_positions,
    names,
    report,
    start_at,
)

logger = logging.getLogger(__name__)


class Ownership:
    """The partitions of one group member and their state machines."""

    def __init__(
        self,
        consumer: Consumer,
        pool: ConnectionPool,
        handler: Handler,
        *,
        group: str,
        owner: str,
        health: Health,
        db_timeout_s: float,
        broker_timeout_s: float,
    ) -> None:
        self._consumer = consumer
        self._pool = pool
        self._handler = handler
        self._group = group
        self._owner = owner
        self._health = health
        self._db_timeout_s = db_timeout_s
        self._broker_timeout_s = broker_timeout_s
        self.partitions: dict[PartitionKey, Partition] = {}
        self.hold = False  # pause every partition (a batch is being retried)
        self.on_leave: Callable[[list[PartitionKey]], None] = lambda keys: None
        # Called first in every rebalance callback: the loop lands a batch in flight, so that
        # nothing is being written while partitions come and go (flight.py).
        self.before_rebalance: Callable[[], None] = lambda: None
        self._shown: set[str] = set()  # health keys this module turned red
        self._awaiting_error = "not answering"  # why partitions are awaiting their offsets
        self.joined = False  # an assignment (even an empty one) arrived: we are in the group

    # -- rebalance callbacks (run inside poll/consume) -------------------------------------

    def on_assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        self.before_rebalance()
        keys = [(tp.topic, tp.partition) for tp in assigned]
        self.joined = True  # cooperative-sticky calls this after every rebalance, empty or not
        try:
            stored, states, broken = self._claim(keys)
        except psycopg.Error as exc:
            # Assign without a start offset, paused, until Postgres answers (`recover`).
            self._awaiting_error = describe(exc)
            for key in keys:
                self.partitions[key] = Partition()
            consumer.incremental_assign(assigned)
            logger.warning("assigned %s while PostgreSQL did not answer", names(keys))
        else:
            for key in keys:
                self.partitions[key] = Partition(stored.get(key), states.get(key), True, True)
                if key in broken:
                    self.partitions[key].pauses["unrestorable"] = broken[key]
            # Stored offsets are handed to the assignment itself (no seek inside the callback).
            consumer.incremental_assign([self._at_stored(key) for key in keys])
            logger.info("assigned %s", self._describe(keys))
        self.sync()

    def on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        # Batches are written between polls (one in flight has landed: before_rebalance), so
        # nothing read is left to commit here.
        self.before_rebalance()
        self._forget([(tp.topic, tp.partition) for tp in revoked])
        consumer.incremental_unassign(revoked)
        logger.info("revoked %s", names([(tp.topic, tp.partition) for tp in revoked]))

    def on_lost(self, consumer: Consumer, lost: list[TopicPartition]) -> None:
        # Lost: someone else may own them already. Never commit, never claim: forget. (A batch
        # in flight lands first: its compare-and-set on the owner token decides its fate.)
        self.before_rebalance()
        self.joined = False  # out of the group until the next assignment
        self._forget([(tp.topic, tp.partition) for tp in lost])
        consumer.incremental_unassign(lost)
        logger.warning("lost %s", names([(tp.topic, tp.partition) for tp in lost]))

    def _forget(self, keys: list[PartitionKey]) -> None:
        for key in keys:
            self.partitions.pop(key, None)
        self.on_leave(keys)
        self.sync()

    # -- claims and positions outside the callbacks ----------------------------------------

    def needs_recovery(self) -> bool:
        return any(not p.known or "unrestorable" in p.pauses for p in self.partitions.values())

    def recover(self) -> None:
        """Claim partitions awaiting offsets and retry unrestorable states (DB errors raise)."""
        assigned = self._still_assigned()
        waiting = [k for k, p in self.partitions.items() if not p.known and k in assigned]
        broken = [k for k, p in self.partitions.items() if p.known and "unrestorable" in p.pauses]
        if waiting:
            claimed = self._claim(waiting)
            # Assign again at the stored offsets *before* calling them known: should librdkafka
            # refuse (a rebalance under way), they stay awaiting and the next recovery retries.
            self._restart(waiting, claimed[0])
            self._adopt(waiting, claimed)
            logger.info("PostgreSQL answered; now consuming %s", self._describe(waiting))
        broken = [k for k in broken if k in assigned]
        if broken:
            with self._pool.connection(timeout=self._db_timeout_s) as conn:
                states, still_broken = load_states(conn, self._handler, broken)
            stored = {key: self.partitions[key].stored for key in broken}
            self._adopt(broken, (stored, states, still_broken))
        self.sync()

    def reposition(self, keys: Sequence[PartitionKey], *, reclaim: bool) -> None:
        """Put partitions back at their stored offsets (a refused or fenced batch). With
        `reclaim`, first claim those the poll() just before still shows assigned, re-reading
        their offsets and states; if Postgres does not answer they go back to awaiting."""
        assigned = self._still_assigned()
        keys = [k for k in keys if k in self.partitions and k in assigned]
        if not keys:
            return
        if reclaim:
            try:
                self._adopt(keys, self._claim(keys))
            except psycopg.Error as exc:
                self._awaiting_error = describe(exc)
                for key in keys:
                    self.partitions[key].known = False
                self.sync()
                return
        for key in keys:
            self._seek(key)
        self.sync()

    def rewind(self, firsts: dict[PartitionKey, int]) -> None:
        """Put partitions back at the given offsets: a batch processed while the one before it
        was in flight is dropped when that one fails (flight.py), to be read again."""
        assigned = self._still_assigned()
        for key, first in firsts.items():
            if key in self.partitions and key in assigned:
                self._seek(key, first)

    def reload(self, keys: Sequence[PartitionKey]) -> None:
        """Read the committed states of `keys` again (a batch in flight failed after the
        memory had taken its states: flight.py). If PostgreSQL does not answer, they await it as
        partitions assigned during an outage do: claimed and restarted at their stored offsets
        once it answers."""
        keys = [key for key in keys if key in self.partitions]
        if not keys:
            return
        try:
            with self._pool.connection(timeout=self._db_timeout_s) as conn:
                states, broken = load_states(conn, self._handler, keys)
        except psycopg.Error as exc:
            self._awaiting_error = describe(exc)
            for key in keys:
                self.partitions[key].known = False
            logger.warning(
                "states of %s not read again (%s): awaiting PostgreSQL", names(keys), describe(exc)
            )
        else:
            self._adopt(keys, ({key: self.partitions[key].stored for key in keys}, states, broken))
        self.sync()

    def _claim(self, keys: Sequence[PartitionKey]) -> Claimed:
        return claim(
            self._pool,
            self._handler,
            keys,
            group=self._group,
            owner=self._owner,
            timeout_s=self._db_timeout_s,
        )

    def _adopt(self, keys: Sequence[PartitionKey], claimed: Claimed) -> None:
        stored, states, broken = claimed
        for key in keys:
            partition = self.partitions[key]
            partition.stored, partition.state = stored.get(key), states.get(key)
            partition.known = True
            if key in broken:
                partition.pauses["unrestorable"] = broken[key]
            else:
                partition.pauses.pop("unrestorable", None)

    def _restart(
        self, keys: Sequence[PartitionKey], stored: dict[PartitionKey, int] | None = None
    ) -> None:
        """Assign again at the stored offsets (for partitions that never started or whose
        position cannot be moved by a seek); `stored` when just claimed, not yet adopted."""
        at = [
            start_at(key, stored.get(key)) if stored is not None else self._at_stored(key)
            for key in keys
        ]
        failpoints.reached("reassign")
        self._consumer.incremental_unassign([TopicPartition(*key) for key in keys])
        self._consumer.incremental_assign(at)
        for key in keys:
            self.partitions[key].started = True
            self.partitions[key].kafka_paused = None  # a fresh assignment: tell it again

    def _seek(self, key: PartitionKey, offset: int | None = None) -> None:
        """To `offset`, or to the stored offset; a seek librdkafka refuses assigns it again (at
        the stored offset: a batch starting anywhere else is refused and re-positioned)."""
        if not self.partitions[key].started:
            return  # `recover` assigns it at its offset
        at = self._at_stored(key) if offset is None else TopicPartition(key[0], key[1], offset)
        try:
            self._consumer.seek(at)
        except KafkaException as exc:
            logger.warning("seek %s[%d] failed (%s): assigning it again", *key, exc)
            self._restart([key])

    def _still_assigned(self) -> set[PartitionKey]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def _at_stored(self, key: PartitionKey) -> TopicPartition:
        return start_at(key, self.partitions[key].stored)

    # -- what may be consumed ----------------------------------------------------------------

    def admits(self, key: PartitionKey, first_offset: int) -> bool | None:
        """Whether a batch may start at `first_offset` of `key`: None when the partition is not
        consuming (its messages are skipped); False when the start is not the stored offset."""
        partition = self.partitions.get(key)
        if partition is None or not partition.known or partition.pauses:
            return None
        if partition.stored is not None:
            return first_offset == partition.stored
        try:
            low, _high = self._consumer.get_watermark_offsets(
                TopicPartition(*key), timeout=self._broker_timeout_s, cached=False
            )
        except KafkaException as exc:  # a leader moving: refused, re-read from the log start
            logger.warning("log start of %s[%d] unknown (%s): batch refused", *key, exc)
            return False
        return first_offset >= low

    def is_awaiting(self, key: PartitionKey) -> bool:
        partition = self.partitions.get(key)
        return partition is not None and not partition.known

    def pause(self, key: PartitionKey, reason: str, message: str) -> None:
        if key in self.partitions:
            self.partitions[key].pauses[reason] = message
            self.sync()

    def committed(self, ends: dict[PartitionKey, int], states: dict[PartitionKey, Any]) -> None:
        for key, end in ends.items():
            partition = self.partitions.get(key)
            if partition is not None:
                partition.stored = end
        for key, state in states.items():  # a sweep moves states without offsets
            partition = self.partitions.get(key)
            if partition is not None:
                partition.state = state

    def sync(self) -> None:
        """Make librdkafka's pause state match ours; health names what does not consume."""
        to_pause, to_resume = [], []
        for key, partition in self.partitions.items():
            want = self.hold or bool(partition.pauses) or not partition.known
            if partition.kafka_paused is not want:
                (to_pause if want else to_resume).append(TopicPartition(*key))
                partition.kafka_paused = want
        if to_pause:
            self._consumer.pause(to_pause)
        if to_resume:
            self._consumer.resume(to_resume)
        self._shown = report(
            self.partitions, self._health, self._shown, self._awaiting_error, self.joined
        )

    def _describe(self, keys: Sequence[PartitionKey]) -> str:
        return describe_positions(self.partitions, keys)
