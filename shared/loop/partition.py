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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.loop.contract import PartitionKey


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
