"""Another session holding a lock, as an analyst's open transaction or a migration would: taken in
a thread of its own, held until released (or `hold_s`, so a failed test never leaves it)."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import psycopg


class HeldLock:
    def __init__(self, conninfo: str, statement: str, params: tuple[Any, ...] = ()) -> None:
        self._conninfo, self._statement, self._params = conninfo, statement, params
        self._locked, self._released = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self, hold_s: float = 90) -> None:
        with psycopg.connect(self._conninfo) as conn, conn.transaction():
            conn.execute(self._statement, self._params)
            self._locked.set()
            self._released.wait(hold_s)

    def take(self) -> HeldLock:
        """Take the lock and return once it is held."""
        self._thread.start()
        assert self._locked.wait(10), f"could not take the lock: {self._statement}"
        return self

    def __enter__(self) -> HeldLock:
        return self.take()

    def release(self) -> None:
        """End the transaction that holds the lock, and wait until it has (idempotent)."""
        self._released.set()
        self._thread.join(10)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
