"""What one recorded response is, as read from its content (never from its file name)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RecordedFile:
    """One recorded API response body and what it answers.

    `key` is the symbol (Yahoo) or series id (FRED); None for an error body that names neither.
    `first`/`last` are the first and last data point (UTC); None when the body holds no points.
    `recorded_at` is the newest moment the body itself proves it was fetched after
    (Yahoo `meta.regularMarketTime`, FRED `realtime_start`); None when the body does not say.
    """

    path: Path
    provider: str
    endpoint: str
    status: int
    key: str | None = None
    granularity: str | None = None
    first: datetime | None = None
    last: datetime | None = None
    recorded_at: datetime | None = None
    # Yahoo: requested with includePrePost=true (tradingPeriods is a {pre,regular,post} dict).
    prepost: bool = False
    # Yahoo: the `range` it was requested with ("6mo"), if it was requested by range.
    range_name: str | None = None
    # FRED observations: the page's offset, and whether it holds every observation (`count`).
    offset: int = 0
    complete: bool = True

    @property
    def newness(self) -> datetime | None:
        """What decides between overlapping recordings: when recorded, else its last point."""
        return self.recorded_at or self.last


# A reader gets a parsed JSON body and returns what it is, or None when it is not its format.
# Adding a provider (Finnhub) means adding its reader to producer.replay.index.READERS.
Reader = Callable[[Path, Any], RecordedFile | None]
