"""When a handler COPYs a batch straight into its table rather than the staging way.

Straight in is the cheaper write at any batch size. It runs without a savepoint (a savepoint
and its release were two of a live batch's seven round trips): a batch that meets a row
already stored fails its transaction, which the loop rolls back and runs again at once, the
staging way this time (which skips or compares such rows). A replaying group meets one in
every batch, so after one the next batches go the staging way at once, and straight in is
tried again only once that many batches met none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import errors

# Batches written the staging way after one met a stored row, before straight in is tried again.
STAGED_AFTER_CONFLICT = 16


class WriteAgain(Exception):  # noqa: N818 - an instruction to the loop, not a failure
    """Raised by `Handler.write` when its transaction must be rolled back and the batch written
    again at once: a direct COPY met a stored row, and the next try goes the staging way. The
    loop does so once (commit.commit_prepared); a batch is never counted as failed for it."""


class DirectCopies:
    """One handler's choice, batch after batch (its writer thread's: `process` never reads it)."""

    def __init__(self, staged_after_conflict: int = STAGED_AFTER_CONFLICT) -> None:
        self._staged_after_conflict = staged_after_conflict
        self._staged_left = 0

    @property
    def direct(self) -> bool:
        """Whether the next batch is COPied straight in."""
        return self._staged_left == 0

    def written(self, met_stored: bool) -> None:
        """A batch was written; `met_stored`: some of its rows were there already."""
        if met_stored:
            self._staged_left = self._staged_after_conflict
        elif self._staged_left:
            self._staged_left -= 1

    @contextmanager
    def attempt(self, table: str) -> Iterator[bool]:
        """Around one write of a batch's rows into `table`: yields whether to COPY them
        straight in. A direct COPY that meets a stored row (UniqueViolation: the transaction
        has failed) becomes WriteAgain, and the next batches go the staging way."""
        direct = self.direct
        try:
            yield direct
        except errors.UniqueViolation as exc:
            if not direct:
                raise
            self.written(met_stored=True)
            raise WriteAgain(
                f"a row of the batch is in {table} already: written again the staging way"
            ) from exc
