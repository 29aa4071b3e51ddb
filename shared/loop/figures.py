"""What a committed batch adds to the loop's metrics (after COMMIT returned, never before)."""

from __future__ import annotations

from shared.loop.commit import Committed
from shared.loop.latency import observe_many
from shared.metrics import BATCH_MESSAGES, COMMIT_LATENCY, MESSAGES, REJECTED


def count_committed(done: Committed, committed_at_ms: float) -> None:
    """End-to-end latency of each record (Kafka CreateTime → COMMIT returned), messages in per
    topic, dead letters by kind, and the batch size."""
    observe_many(
        COMMIT_LATENCY,
        [(committed_at_ms - record.timestamp_ms) / 1000 for record in done.records],
    )
    for key, end in done.ends.items():
        MESSAGES.labels(key[0], "in").inc(end - done.firsts[key])
    for letter in done.rejected:
        REJECTED.labels(letter.topic, letter.kind).inc()
    if done.written:
        BATCH_MESSAGES.observe(done.written)
