"""The one exactly-once consumer loop: results, dead letters, state and offsets in one transaction.

Kafka's own offset commit is never used: the offsets stored in PostgreSQL, written in the same
transaction as the results, are the only truth, handed to the assignment when partitions arrive.

- `contract`: what a service plugs in (decode, load, pure process → Effects, write).
- `ownership`: the per-partition state machine (awaiting_offsets → consuming ⇄ paused → revoked),
  claims, positions, pause/resume.
- `batch`: poll results → items (decode, dead-letter decisions, the start-offset check).
- `commit`: the one transaction and the order of its steps.
- `failures`: which failures are one message's fault, and what to do about the others.
- `offsets`: the SQL (claims, compare-and-set offsets, dead letters).
- `runner`: the loop (retries, halving, holds); `member`: `run_consumer`, which wires it up.
- `flight`: a pipelined handler's batch written on the writer thread while the next is processed.
- `sweeper`: the handler's sweep between batches; `figures`: a committed batch's metrics;
  `kafka_errors`: which librdkafka errors are expected and which are alarms.
- `direct_copy`: when a handler COPYs a batch straight into its table, not the staging way.
- `failpoints`: named points a test entry point can hook; inert in production.
"""

from shared.loop.contract import Effects, Handler, PartitionKey, Record, Rejected
from shared.loop.member import run_consumer

__all__ = ["Effects", "Handler", "PartitionKey", "Record", "Rejected", "run_consumer"]
