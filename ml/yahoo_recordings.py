"""Daily series read from recorded Yahoo chart responses (recordings/yahoo/chart_*_1d_*.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np


@dataclass(frozen=True)
class DailySeries:
    """Closes of one symbol by exchange-local session date, oldest first."""

    name: str
    days: tuple[date, ...]
    closes: np.ndarray


def read_chart(path: Path) -> DailySeries:
    """The non-null closes of one chart response, keyed by session date in the exchange's zone
    (a daily bar is stamped at the open, the current session's at its last trade)."""
    result = json.loads(path.read_text())["chart"]["result"][0]
    zone = ZoneInfo(result["meta"]["exchangeTimezoneName"])
    closes = result["indicators"]["quote"][0]["close"]
    by_day: dict[date, float] = {}
    for stamp, close in zip(result.get("timestamp") or [], closes, strict=True):
        if close is not None:
            by_day[datetime.fromtimestamp(stamp, UTC).astimezone(zone).date()] = float(close)
    days = tuple(sorted(by_day))
    return DailySeries(path.stem, days, np.array([by_day[d] for d in days]))


def recorded_daily_series(folder: Path, min_bars: int = 250) -> list[DailySeries]:
    """Every recorded daily chart in `folder` with at least `min_bars` closes, by file name."""
    found = (read_chart(path) for path in sorted(folder.glob("chart_*_1d_*.json")))
    return [series for series in found if len(series.closes) >= min_bars]
