"""Which windows producer.market requests: live history since the watermark, or replay ranges."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from producer.replay.index import ChartRange
from producer.yahoo_intervals import DAILY
from shared.calendar import ExchangeCalendar
from shared.settings import YAHOO_HISTORY_LIMIT_DAYS

logger = logging.getLogger(__name__)

# How far back Yahoo serves each granularity (shared.settings, which also refuses a longer
# MARKET_HISTORY_DAYS), and the longest window one request may span ("Only 7 days worth of 1m
# granularity data are allowed to be fetched per request"); a day of margin keeps a slow request
# inside the limit.
_INTRADAY_REACH = timedelta(days=59)
_SPAN = {"1m": timedelta(days=7), "1h": timedelta(days=729), "60m": timedelta(days=729)}
_INTRADAY_SPAN = timedelta(days=59)
# yfinance drops a last point at or after `end`; replay windows end just after their last point.
_AFTER_LAST = timedelta(seconds=1)


@dataclass(frozen=True)
class Window:
    """Request bars in [start, end) (UTC)."""

    start: datetime
    end: datetime


def bar_key(interval: str, moment: datetime, calendar: ExchangeCalendar) -> datetime:
    """The key a bar stamped `moment` gets: its open time, or its session date at 00:00 UTC."""
    if interval == DAILY:
        return datetime.combine(calendar.session_date(moment), time(), UTC)
    return moment.astimezone(UTC)


def live_windows(
    interval: str,
    *,
    watermark: datetime | None,
    now: datetime,
    history_days: int,
    calendar: ExchangeCalendar,
) -> list[Window]:
    """From the watermark (or MARKET_HISTORY_DAYS back on a first start) to now, in chunks.

    The watermark's own bar is asked for again (and skipped), so nothing after it is missed.
    Intraday history is clamped to what Yahoo serves (1m: 30 days, 2m–90m: 60 days, 1h: 730).
    """
    start = watermark or now - timedelta(days=history_days)
    if interval == DAILY:
        # The whole first session, from its exchange-local midnight; a daily watermark already
        # is a session date (at 00:00 UTC).
        day = watermark.date() if watermark else calendar.session_date(start)
        start = datetime.combine(day, time(), calendar.tz)
        span = None
    else:
        limit = YAHOO_HISTORY_LIMIT_DAYS.get(interval)
        reach = _INTRADAY_REACH if limit is None else timedelta(days=limit)
        if start < now - reach:
            logger.info("%s history is clamped to the %d days Yahoo serves", interval, reach.days)
            start = now - reach
        span = _SPAN.get(interval, _INTRADAY_SPAN)
    windows: list[Window] = []
    while start < now:
        end = now if span is None else min(now, start + span)
        windows.append(Window(start.astimezone(UTC), end))
        start = end
    return windows


def replay_windows(
    ranges: list[ChartRange],
    interval: str,
    *,
    watermark: datetime | None,
    calendar: ExchangeCalendar,
) -> list[Window]:
    """Each recorded range as one window, ordered by first point, skipping ranges already sent.

    A replay asks for each recording's own time range, never "the last N days from now".
    """
    return [
        Window(r.first, r.last + _AFTER_LAST)
        for r in sorted(ranges, key=lambda r: (r.first, r.last))
        if watermark is None or bar_key(interval, r.last, calendar) > watermark
    ]


def backfill_windows(ranges: list[ChartRange], *, days: int) -> list[Window]:
    """Replay's backfill: the recorded ranges cut to the `days` before the newest recorded point.

    A replay's "now" is its recordings' own time, so `backfill --days N` reaches N days back
    from the symbol's newest point, whatever today is.
    """
    if not ranges:
        return []
    cutoff = max(r.last for r in ranges) - timedelta(days=days)
    return [
        Window(max(r.first, cutoff), r.last + _AFTER_LAST)
        for r in sorted(ranges, key=lambda r: (r.first, r.last))
        if r.last >= cutoff
    ]
