"""One partition's state machine: where it stands and whether Kafka may fetch it.

    assigned ─┬─(claim + load ok)──────────────────────────> consuming ⇄ paused(reason)
              └─(Postgres did not answer)─> awaiting_offsets ──┘            │
                                                                   revoked / lost: forgotten

- **awaiting_offsets**: Kafka assigned it while Postgres did not answer, so its stored offset
  and state are unknown. It is assigned without a start offset and kept paused (librdkafka may
  report `_AUTO_OFFSET_RESET` for it: expected, not a retention gap). Once Postgres answers, and
  only if the poll() just before still shows it assigned, it is claimed, its state loaded, and it
  is unassigned and assigned again *at the stored offset*: a partition that never started is
  never seeked.
- **consuming**: fetching from its stored offset; every batch must start exactly there
  (`admits`).
- **paused(reason)**: still owned, not fetched: the whole member is on `hold` while the
  database is in trouble or a batch is being retried; `upgrade` for a schema newer than this
  code; `unrestorable` for a stored state that cannot be loaded (retried slowly).
- **revoked / lost**: forgotten at once; the loop drops what it still held of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from shared.health import Health
from shared.loop.contract import PartitionKey
from shared.metrics import PARTITIONS


@dataclass
class Partition:
    """What this member knows of one partition it owns (`phase` names the state)."""

    stored: int | None = None  # next offset in consumer_offsets (None: none stored yet)
    state: Any = None  # the handler's committed state of this partition
    known: bool = False  # stored offset and state loaded (False: awaiting_offsets)
    started: bool = False  # assigned with a real start offset
    pauses: dict[str, str] = field(default_factory=dict)  # reason -> message
    kafka_paused: bool | None = None  # what we last told librdkafka (None: nothing yet)

    @property
    def phase(self) -> str:
        if not self.known:
            return "awaiting_offsets"
        return f"paused({', '.join(self.pauses)})" if self.pauses else "consuming"


def health_reasons(
    partitions: Mapping[PartitionKey, Partition], awaiting_error: str
) -> dict[str, str]:
    """Why partitions do not consume, as health reasons (key -> message)."""
    reasons: dict[str, str] = {}
    awaiting = [key for key, partition in partitions.items() if not partition.known]
    if awaiting:
        reasons["awaiting"] = (
            f"{len(awaiting)} partition(s) waiting for their stored offsets "
            f"(PostgreSQL: {awaiting_error})"
        )
    for key, partition in partitions.items():
        for reason, message in partition.pauses.items():
            reasons[f"{reason}:{key[0]}[{key[1]}]"] = message
    return reasons


def phase_counts(partitions: Mapping[PartitionKey, Partition]) -> dict[str, int]:
    """How many partitions are consuming, paused or awaiting their offsets (the gauge's labels)."""
    counts = {"consuming": 0, "paused": 0, "awaiting_offsets": 0}
    for partition in partitions.values():
        if not partition.known:
            counts["awaiting_offsets"] += 1
        elif partition.pauses:
            counts["paused"] += 1
        else:
            counts["consuming"] += 1
    return counts


def unready_reason(partitions: Mapping[PartitionKey, Partition], joined: bool) -> str | None:
    """Why this member is not ready (/readyz), None when it is: in its group and every partition
    it owns consuming. A member that owns none (more replicas than partitions) is ready."""
    if not joined:
        return "not in the consumer group yet (no assignment received)"
    counts = phase_counts(partitions)
    waiting = counts["paused"] + counts["awaiting_offsets"]
    if waiting:
        return (
            f"{waiting} of {len(partitions)} partition(s) not consuming "
            f"({counts['paused']} paused, {counts['awaiting_offsets']} awaiting offsets)"
        )
    return None


def report(
    partitions: Mapping[PartitionKey, Partition],
    health: Health,
    shown: set[str],
    awaiting_error: str,
    joined: bool,
) -> set[str]:
    """Health, readiness and the phase gauge from the partitions' states; returns the health
    keys now red (`shown`: those red before, turned green when their reason is gone)."""
    reasons = health_reasons(partitions, awaiting_error)
    for name in shown - set(reasons):
        health.green(name)
    for name, message in reasons.items():
        health.red(name, message)
    for phase, count in phase_counts(partitions).items():
        PARTITIONS.labels(phase).set(count)
    unready = unready_reason(partitions, joined)
    if unready is None:
        health.ready("partitions")
    else:
        health.not_ready("partitions", unready)
    return set(reasons)


def start_at(key: PartitionKey, stored: int | None) -> TopicPartition:
    """Where a partition starts: its stored offset, or the log start when none is stored."""
    return TopicPartition(key[0], key[1], OFFSET_BEGINNING if stored is None else stored)


def names(keys: Sequence[PartitionKey]) -> str:
    return ", ".join(f"{topic}[{partition}]" for topic, partition in keys) or "nothing"


def describe_positions(
    partitions: Mapping[PartitionKey, Partition], keys: Sequence[PartitionKey]
) -> str:
    """`topic[n]@stored` of each key still owned, for the log."""
    return (
        ", ".join(f"{k[0]}[{k[1]}]@{partitions[k].stored}" for k in keys if k in partitions)
        or "nothing"
    )
