"""The consumer loop's contract with a service: decoded records and the handler interface."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from confluent_kafka import Message


@dataclass(frozen=True)
class Record:
    """A decoded message with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: Any
    timestamp_ms: int


@dataclass(frozen=True)
class Rejected:
    """A message that will be stored in dead_letters instead of processed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes | None
    reason: str


class Handler:
    """What a service plugs into the loop: decoding, writing, and (optionally) its own state.

    A stateful handler keeps per-partition state in memory and writes it in `write`, in the
    batch's transaction; the loop calls `load` whenever that memory may be ahead of the database
    (assignment, a rolled-back or fenced batch, Postgres coming back) and `forget` when
    partitions leave this member.
    """

    def decode(self, message: Message) -> Any:
        """Decode one message; raise SchemaError or ValidationError to dead-letter it."""
        raise NotImplementedError

    def write(self, conn: psycopg.Connection, records: Sequence[Record]) -> None:
        """Write the batch's results inside the caller's transaction (no commit here)."""
        raise NotImplementedError

    def load(self, conn: psycopg.Connection, partitions: Sequence[tuple[str, int]]) -> None:
        """(Re)load the committed state of these partitions (stateless handlers: nothing)."""

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Drop the state of partitions this member no longer owns."""
