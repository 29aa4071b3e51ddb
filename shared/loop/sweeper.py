"""The handler's sweep: work over every loaded state that no message asks for (see
Handler.sweep_due — e.g. resolving the alert machines of rules a reload removed), written in one
transaction of its own between batches (commit.write_sweep)."""

from __future__ import annotations

import logging
import time

from psycopg_pool import ConnectionPool

from shared.loop.commit import write_sweep
from shared.loop.contract import Handler, LoopOptions
from shared.loop.failures import describe
from shared.loop.ownership import Ownership

logger = logging.getLogger(__name__)


class Sweeper:
    def __init__(
        self,
        pool: ConnectionPool,
        handler: Handler,
        ownership: Ownership,
        options: LoopOptions,
        owner: str,
    ) -> None:
        self._pool, self._handler, self._own = pool, handler, ownership
        self._options, self._owner = options, owner
        self._retry_at = 0.0  # a failed sweep waits for this monotonic time

    def due(self) -> bool:
        return time.monotonic() >= self._retry_at and self._handler.sweep_due()

    def run(self) -> None:
        """Sweep now; when it fails, log why and retry after the first backoff."""
        try:
            done = write_sweep(
                self._pool,
                self._handler,
                self._own,
                group=self._options.group_id,
                owner=self._owner,
                db_timeout_s=self._options.pool_wait_s,
            )
        except Exception as exc:  # noqa: BLE001 (the loop boundary: logged, retried)
            self._retry_at = time.monotonic() + self._options.db_retry_s
            logger.warning(
                "sweep not written, retried in %.1fs: %s", self._options.db_retry_s, describe(exc)
            )
            return
        self._own.committed({}, done.states)
        self._handler.committed(done.effects, time.time() * 1000)
