"""The index of a folder of recorded responses, built by reading what each file is."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from producer.replay.finnhub_files import read_finnhub
from producer.replay.fred_files import assign_series, read_fred
from producer.replay.recorded import Reader, RecordedFile
from producer.replay.yahoo_files import read_chart
from producer.replay.yahoo_quote_files import read_quote

logger = logging.getLogger(__name__)

# Each reader recognises one provider's bodies.
READERS: tuple[Reader, ...] = (read_chart, read_quote, read_fred, read_finnhub)


@dataclass(frozen=True)
class ChartRange:
    """A recorded (symbol, granularity) time range, as the producer requests it in replay."""

    symbol: str
    granularity: str
    first: datetime
    last: datetime
    prepost: bool


class ReplayIndex:
    """Every recognised recorded response under a folder (which may be read-only)."""

    def __init__(self, files: list[RecordedFile], ignored: list[Path]) -> None:
        self.files = files
        self.ignored = ignored

    @classmethod
    def scan(cls, folder: Path) -> ReplayIndex:
        """Read every file under `folder`; unrecognised ones are logged once and ignored."""
        files: list[RecordedFile] = []
        ignored: list[Path] = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            recorded = _read(path)
            if recorded is None:
                ignored.append(path)
            else:
                files.append(recorded)
        if ignored:
            logger.info(
                "replay: %d file(s) under %s are not recorded API responses this replay knows, "
                "ignored: %s",
                len(ignored),
                folder,
                ", ".join(str(p.relative_to(folder)) for p in ignored),
            )
        return cls(assign_series(files), ignored)

    def charts(
        self, symbol: str | None = None, granularity: str | None = None
    ) -> list[RecordedFile]:
        """Yahoo chart bodies with data, optionally for one symbol and granularity."""
        return [
            f
            for f in self.files
            if f.provider == "yahoo"
            and f.endpoint == "chart"
            and f.status == 200
            and (symbol is None or f.key == symbol)
            and (granularity is None or f.granularity == granularity)
        ]

    def chart_ranges(self, symbol: str, granularity: str, prepost: bool) -> list[ChartRange]:
        """The recorded time ranges of `symbol` at `granularity`, ordered by first timestamp."""
        ranges = {
            ChartRange(symbol, granularity, f.first, f.last, f.prepost)
            for f in self.charts(symbol, granularity)
            if f.first is not None and f.last is not None and f.prepost == prepost
        }
        return sorted(ranges, key=lambda r: (r.first, r.last))

    def chart_error(self, status: int) -> RecordedFile | None:
        """A recorded Yahoo chart error body with this status (Yahoo's own answer), if any."""
        return next(
            (
                f
                for f in self.files
                if f.provider == "yahoo" and f.endpoint == "chart" and f.status == status
            ),
            None,
        )


def _read(path: Path) -> RecordedFile | None:
    if path.suffix.lower() != ".json":
        return None
    try:
        body = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        logger.info("replay: %s is not readable JSON (%s)", path.name, exc)
        return None
    for reader in READERS:
        recorded = reader(path, body)
        if recorded is not None:
            return recorded
    return None
