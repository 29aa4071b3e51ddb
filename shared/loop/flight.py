"""A batch in flight: its transaction runs on the writer thread while the loop reads and
processes the next batch (handlers with `pipelined = True`).

Without it the loop alternates: process a batch, then wait while PostgreSQL inserts it, then
process the next — the consumer and the database each idle half the time. In flight, the next
batch is processed against the states and stored offsets the batch in flight *will* leave, which
the member's memory shows from the moment it takes off (`Flight.launch`). If the transaction
fails, `undo` puts back the stored offsets, the loop reads the states of the flight's partitions
again from the database (`Ownership.reload`: the states before the launch are not kept — with
thousands of series a batch, a third copy of their states was most of a consumer's memory),
drops the batch processed since (its partitions rewound to where it started, and their states
read again too when it was processed in place: Handler.in_place) and retries the
failed one the usual way (holds, backoff, halving). Nothing is decided on the writer thread: it
only runs the transaction (`commit.commit_prepared`) and reports; the loop lands the flight —
applies its outcome — on its own thread, before a rebalance callback acts, before a sweep or a
recovery, and before it stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from shared.loop.commit import Committed, Prepared
from shared.loop.contract import PartitionKey
from shared.loop.ownership import Ownership
from shared.loop.partition import Partition


@dataclass(frozen=True)
class Landed:
    """A flight's transaction committed: what it wrote, when COMMIT returned, how long it took."""

    done: Committed
    committed_at_ms: float
    seconds: float


class Writer:
    """The writer thread: one transaction at a time."""

    def __init__(self, name: str, write: Callable[[Prepared], Committed]) -> None:
        self._write = write
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)

    def submit(self, prepared: Prepared) -> Future[Landed]:
        return self._executor.submit(self._run, prepared)

    def _run(self, prepared: Prepared) -> Landed:
        started = time.perf_counter()
        done = self._write(prepared)
        return Landed(done, time.time() * 1000, time.perf_counter() - started)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class Flight:
    """One prepared batch being written; the member's memory already shows its outcome."""

    def __init__(
        self,
        prepared: Prepared,
        future: Future[Landed],
        undo: list[tuple[PartitionKey, Partition, int | None]],
    ) -> None:
        self.prepared = prepared
        self._future = future
        self._undo = undo

    @classmethod
    def launch(cls, prepared: Prepared, ownership: Ownership, writer: Writer) -> Flight:
        """Show the batch's offsets and states in memory, then start its transaction."""
        partitions = ownership.partitions
        undo = []
        for key in prepared.ends:
            partition = partitions.get(key)
            if partition is not None:
                undo.append((key, partition, partition.stored))
        ownership.committed(prepared.ends, dict(prepared.effects.states))
        return cls(prepared, writer.submit(prepared), undo)

    def wait(self) -> Landed:
        """Block until the transaction ended; raises what ended it when it failed."""
        return self._future.result()

    def undo(self, ownership: Ownership) -> None:
        """The transaction failed: the stored offset of each partition still owned (the same
        assignment: a partition lost and assigned again was re-read from the database) goes
        back to what it was before the launch. Their states are the caller's to reload."""
        for key, partition, stored in self._undo:
            if ownership.partitions.get(key) is partition:
                partition.stored = stored
