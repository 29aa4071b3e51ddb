"""Yahoo chart granularities: how long one bar lasts, and the name yfinance requests it under."""

from __future__ import annotations

from datetime import timedelta

DAILY = "1d"
INTERVAL_STEP = {
    "1m": timedelta(minutes=1),
    "2m": timedelta(minutes=2),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "60m": timedelta(hours=1),
    "90m": timedelta(minutes=90),
    "1h": timedelta(hours=1),
    DAILY: timedelta(days=1),
    "5d": timedelta(days=5),
    "1wk": timedelta(weeks=1),
    "1mo": timedelta(days=31),  # the longest month
    "3mo": timedelta(days=92),
}
# yfinance asks Yahoo for 30m bars as 15m and resamples them itself (yfinance
# scrapers/history.py: "fix weird bug with Yahoo! - returning 60m for 30m bars"); every other
# interval is requested under its own name.
FETCH_INTERVAL = {"30m": "15m"}


def fetch_interval(interval: str) -> str:
    """The granularity yfinance requests from Yahoo for `interval` (its meta.dataGranularity)."""
    return FETCH_INTERVAL.get(interval, interval)
