"""shared/loop/direct_copy.py: straight in, but the batches after one meeting a stored row."""

from __future__ import annotations

from shared.loop.direct_copy import DirectCopies


def test_straight_in_until_a_batch_meets_a_stored_row_then_staged_for_the_next_ones() -> None:
    copies = DirectCopies(staged_after_conflict=3)
    assert copies.direct
    copies.written(met_stored=False)
    assert copies.direct
    copies.written(met_stored=True)
    seen = []
    for _ in range(4):
        seen.append(copies.direct)
        copies.written(met_stored=False)
    assert seen == [False, False, False, True]


def test_a_staged_batch_that_meets_a_stored_row_starts_the_count_again() -> None:
    """A replay meets stored rows in every batch: it stays the staging way throughout."""
    copies = DirectCopies(staged_after_conflict=2)
    copies.written(met_stored=True)
    copies.written(met_stored=False)
    copies.written(met_stored=True)
    assert not copies.direct
    copies.written(met_stored=False)
    assert not copies.direct
    copies.written(met_stored=False)
    assert copies.direct
