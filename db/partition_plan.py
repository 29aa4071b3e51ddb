"""Pure planning of time partitions: which month ranges to create, which have expired.

No I/O: db/partitions.py reads the catalog, asks this module, and runs the DDL. Ranges are
half-open [lower, upper) in UTC, as PostgreSQL's RANGE partition bounds are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, order=True)
class Span:
    """One partition's bounds: rows with lower <= key < upper."""

    lower: datetime
    upper: datetime


def add_months(ts: datetime, months: int) -> datetime:
    """The first instant of the month `months` after ts's month (ts's day and time dropped)."""
    index = ts.year * 12 + (ts.month - 1) + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def span_of(ts: datetime, months: int) -> Span:
    """The aligned partition span holding ts: `months` long, starting on a multiple of `months`
    in the year (monthly, bi-monthly, quarterly, … yearly), in UTC."""
    ts = ts.astimezone(UTC)
    start_month = (ts.month - 1) // months * months
    lower = datetime(ts.year, start_month + 1, 1, tzinfo=UTC)
    return Span(lower, add_months(lower, months))


def spans_ahead(now: datetime, months: int, ahead: int) -> list[Span]:
    """The span holding `now` and the `ahead` spans after it: what must exist so that no insert
    of a current bar ever lands in the default partition, even while upkeep is late."""
    first = span_of(now, months)
    return [
        Span(add_months(first.lower, i * months), add_months(first.upper, i * months))
        for i in range(ahead + 1)
    ]


def uncovered(wanted: Span, existing: Iterable[Span]) -> list[Span]:
    """The parts of `wanted` no existing partition covers (existing ones may have another span
    length, e.g. after RETENTION_PARTITION_MONTHS changed: new ones never overlap them)."""
    pieces = [wanted]
    for taken in sorted(existing):
        next_pieces = []
        for piece in pieces:
            if taken.upper <= piece.lower or taken.lower >= piece.upper:
                next_pieces.append(piece)
                continue
            if piece.lower < taken.lower:
                next_pieces.append(Span(piece.lower, taken.lower))
            if taken.upper < piece.upper:
                next_pieces.append(Span(taken.upper, piece.upper))
        pieces = next_pieces
    return pieces


def plan_creates(
    existing: Sequence[Span],
    now: datetime,
    months: int,
    ahead: int,
    keys_in_default: Sequence[datetime] = (),
) -> list[Span]:
    """Partitions to create, in order: the span of every key found in the default partition
    (so upkeep can move those rows out) and, once the table holds rows (a partition or a key in
    the default), the spans from now to `ahead` spans later; each minus what existing partitions
    already cover. A table (or interval) never written gets none: its first rows wait in the
    default until the next upkeep, and empty partitions cost every database copy time."""
    wanted = {span_of(key, months) for key in keys_in_default}
    if existing or keys_in_default:
        wanted.update(spans_ahead(now, months, ahead))
    creates: set[Span] = set()
    for span in wanted:
        creates.update(uncovered(span, existing))
    return sorted(creates)


def retention_cutoff(now: datetime, days: int | None) -> datetime | None:
    """Rows with a key before this instant are past retention (None: kept forever)."""
    return None if days is None else now - timedelta(days=days)


def expired(existing: Iterable[Span], cutoff: datetime | None) -> list[Span]:
    """Partitions whose every possible row is older than the cutoff (upper <= cutoff): dropping
    them never touches a row at or after the cutoff."""
    if cutoff is None:
        return []
    return sorted(span for span in existing if span.upper <= cutoff)


def partition_name(parent: str, span: Span) -> str:
    """`<parent>_pYYYYMMDD` after its first day (the migration names them the same way)."""
    return f"{parent}_p{span.lower:%Y%m%d}"
