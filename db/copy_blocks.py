"""A `COPY … TO STDOUT` (text or CSV) read in a thread of its own, handed over in blocks.

PostgreSQL sends one message per row; gathering them into blocks is per-row Python work, and
writing the blocks is per-block work: db/prefetch.py overlaps the two and bounds the memory.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from db.prefetch import Prefetch, ReadError


class CopyBlocks(Prefetch[bytes]):
    """Iterate the blocks (bytes, about `block_bytes` each) of one COPY TO STDOUT; `rowcount`
    is the server's row count once the iteration has ended."""

    def __init__(
        self,
        conn: psycopg.Connection,
        statement: sql.Composed,
        *,
        block_bytes: int = 8 << 20,
        depth: int = 2,
    ) -> None:
        super().__init__(depth=depth)
        self._conn, self._statement = conn, statement
        self._block_bytes = block_bytes
        self.rowcount = -1

    def _produce(self, put: Callable[[bytes], None]) -> None:
        # `put` raising Stopped inside the COPY block makes psycopg cancel the COPY (leaving the
        # block normally would leave the connection mid-COPY).
        try:
            with self._conn.cursor() as cur:
                with cur.copy(self._statement) as copy:
                    parts: list[bytes] = []
                    size = 0
                    for chunk in copy:
                        parts.append(chunk)
                        size += len(chunk)
                        if size >= self._block_bytes:
                            put(b"".join(parts))
                            parts, size = [], 0
                    if parts:
                        put(b"".join(parts))
                self.rowcount = cur.rowcount
        except psycopg.Error as exc:
            lines = str(exc).strip().splitlines()
            raise ReadError(lines[0] if lines else type(exc).__name__) from exc
