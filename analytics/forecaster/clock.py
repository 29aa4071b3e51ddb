"""Where a bar stands on its exchange's clock: the anchor that schedules origins, and the
expected time of the k-th bar after an origin (pure: the calendar ships its data)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from shared.calendar import Session, get_calendar

# Intraday anchors count bars of the interval from this instant: a fixed grid, so an origin's
# place never depends on how much of the series is stored (a backfill adds no shift).
INTRADAY_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)
_MINUTES = {"1m": 1, "2m": 2, "5m": 5, "15m": 15, "30m": 30, "60m": 60, "90m": 90, "1h": 60}


class BarClock:
    """Anchors and targets of one (exchange, interval)."""

    def __init__(self, exchange: str, interval: str) -> None:
        self.interval = interval
        self._calendar = get_calendar(exchange)
        self._daily = interval == "1d"
        self._step = timedelta(minutes=_MINUTES.get(interval, 0))
        if not self._daily and not self._step:
            raise ValueError(f"unknown interval {interval!r}")

    def anchor(self, ts: datetime) -> int | None:
        """Daily (keyed by the session date at 00:00 UTC): the session's index in the exchange
        calendar, None for a day that is no session. Intraday: bars since the epoch."""
        if self._daily:
            return _session_index(self._calendar.name).get(ts.astimezone(UTC).date())
        return int((ts - INTRADAY_EPOCH) // self._step)

    def target(self, origin_ts: datetime, step: int) -> datetime | None:
        """The expected time of the `step`-th bar after `origin_ts` (None past the calendar)."""
        if self._daily:
            sessions = _session_days(self._calendar.name)
            anchor = self.anchor(origin_ts)
            if anchor is None or anchor + step >= len(sessions):
                return None
            position = anchor + step
            if position >= len(sessions):
                return None
            return datetime.combine(sessions[position], datetime.min.time(), tzinfo=UTC)
        ts = origin_ts
        for _ in range(step):
            ts = self._next_intraday(ts)
            if ts is None:
                return None
        return ts

    def _next_intraday(self, ts: datetime) -> datetime | None:
        candidate = ts + self._step
        session = self._calendar.session_at(candidate)
        if session is not None:
            return candidate
        day = self._calendar.session_date(candidate)
        # Past the close (or before the open): the next session's open, skipping the night.
        current = self._calendar.session(day)
        if current is not None and candidate.astimezone(UTC) < current.open:
            return current.open
        following = _next_session(self._calendar.name, day)
        return None if following is None else following.open


@lru_cache(maxsize=8)
def _session_days(exchange: str) -> list[date]:
    calendar = get_calendar(exchange)
    day, days = calendar.first_day, []
    while day <= calendar.last_day:
        if calendar.session(day) is not None:
            days.append(day)
        day += timedelta(days=1)
    return days


@lru_cache(maxsize=8)
def _session_index(exchange: str) -> dict[date, int]:
    return {day: i for i, day in enumerate(_session_days(exchange))}


def _next_session(exchange: str, day: date) -> Session | None:
    calendar = get_calendar(exchange)
    day += timedelta(days=1)
    while day <= calendar.last_day:
        session = calendar.session(day)
        if session is not None:
            return session
        day += timedelta(days=1)
    return None
