"""A `COPY … TO STDOUT` read in a thread of its own, handed over in blocks through a small queue.

PostgreSQL sends one message per row; gathering them into blocks is per-row Python work, and
parsing and writing the blocks (pyarrow, which releases the GIL) is per-block work. Doing the
two in two threads overlaps them instead of adding them. The queue holds at most `depth`
blocks, so memory stays bounded whatever the size of the export: a slow writer stalls the
reader, and the server waits on its socket.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

_END = object()


class _Stopped(Exception):
    """Raised inside the COPY block when the consumer has gone: psycopg then cancels the COPY
    (leaving the block normally would leave the connection mid-COPY)."""


class CopyBlocks:
    """Iterate the blocks (bytes, about `block_bytes` each) of one COPY TO STDOUT; `rowcount`
    is the server's row count once the iteration has ended."""

    def __init__(
        self,
        conn: psycopg.Connection,
        statement: sql.Composed,
        params: list[Any],
        *,
        block_bytes: int = 8 << 20,
        depth: int = 2,
    ) -> None:
        self._conn, self._statement, self._params = conn, statement, params
        self._block_bytes = block_bytes
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.rowcount = -1
        self._thread = threading.Thread(target=self._read, name="copy-reader", daemon=True)

    def __iter__(self) -> Iterator[bytes]:
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the reader (a COPY not read to its end is cancelled) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            self._drain()
            self._thread.join(0.05)

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            return

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            with self._conn.cursor() as cur:
                with cur.copy(self._statement, self._params) as copy:
                    parts: list[bytes] = []
                    size = 0
                    for chunk in copy:
                        parts.append(chunk)
                        size += len(chunk)
                        if size >= self._block_bytes:
                            if not self._put(b"".join(parts)):
                                raise _Stopped
                            parts, size = [], 0
                    if parts and not self._put(b"".join(parts)):
                        raise _Stopped
                self.rowcount = cur.rowcount
        except _Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            self._put(exc)
            return
        self._put(_END)


class BlockStream(io.RawIOBase):
    """Blocks as a readable file (what pyarrow's CSV reader takes)."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._pending = memoryview(block)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
