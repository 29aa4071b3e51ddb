"""A producer run in a thread of its own, its items handed over through a small queue.

An export reads from PostgreSQL and writes a file: reading (the socket, the COPY's decoding) and
writing (Parquet encoding, compression) both run in C with the GIL released, so doing them in two
threads overlaps them instead of adding them. The queue holds at most `depth` items, so memory stays
bounded whatever the size of the export: a slow writer stalls the producer, and the server waits on
its socket. Leaving the iteration early (an error, a full disk, Ctrl-C) stops the producer, which
then cancels its query (`Prefetch._produce` says how) before `close()` returns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from shared.errors import PipelineError

Item = TypeVar("Item")
_END = object()


class ReadError(PipelineError):
    """The producer could not read the database: connecting, the query or its rows failed (the
    server's message, one line)."""


class Stopped(Exception):
    """Raised by `put` when the consumer has gone: the producer unwinds through it (and its
    cleanup cancels the query), and the thread ends quietly."""


class Prefetch(Generic[Item]):
    """Iterate what `_produce` puts, produced in the thread named `thread_name`; an error in the
    producer is raised in the consuming thread."""

    def __init__(self, *, depth: int = 2, thread_name: str = "copy-reader") -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def _produce(self, put: Callable[[Item], None]) -> None:
        """Produce every item through `put` (which raises Stopped once the consumer has gone)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Item]:
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
        """Stop the producer (a query not read to its end is cancelled) and wait for it."""
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

    def _put_or_stop(self, item: Item) -> None:
        if not self._put(item):
            raise Stopped

    def _run(self) -> None:
        try:
            self._produce(self._put_or_stop)
        except Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            self._put(exc)
            return
        self._put(_END)
