"""When a handler COPYs a batch straight into its table rather than the staging way.

Straight in is the cheaper write at any batch size, inside a savepoint: a batch that meets a row
already stored undoes its COPY and goes the staging way (which skips or compares such rows). A
replaying group meets one in every batch, so after one the next batches go the staging way at
once, and straight in is tried again only once that many batches met none.
"""

from __future__ import annotations

# Batches written the staging way after one met a stored row, before straight in is tried again.
STAGED_AFTER_CONFLICT = 16


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
