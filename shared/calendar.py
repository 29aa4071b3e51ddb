"""Exchange sessions (holidays, half-days, DST) from exchange_calendars, one cached per exchange."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars

# exchange_calendars starts a calendar 20 years back by default; recorded data reaches 2010, so
# the calendar is built from here on. A request reaching further back (a backfill of MSFT from
# 1986) gets a calendar built from its own earliest date: see `get_calendar(name, start)`.
DEFAULT_START = date(2000, 1, 1)


@dataclass(frozen=True)
class Session:
    """One regular trading session: its exchange-local date and its open and close in UTC."""

    day: date
    open: datetime
    close: datetime


class OutsideCalendarError(ValueError):
    """A date the calendar was not built for: its sessions are unknown, not absent."""


class ExchangeCalendar:
    """Sessions of one exchange between `start` (DEFAULT_START) and about a year from now."""

    def __init__(self, name: str, start: date = DEFAULT_START) -> None:
        calendar = exchange_calendars.get_calendar(name, start=start.isoformat())
        self.name = name
        self.tz = ZoneInfo(str(calendar.tz))
        schedule = calendar.schedule
        # Looked up once per bar: a dict beats a pandas lookup by two orders of magnitude.
        self._sessions = {
            label.date(): Session(label.date(), opened.to_pydatetime(), closed.to_pydatetime())
            for label, opened, closed in zip(
                schedule.index, schedule["open"], schedule["close"], strict=True
            )
        }
        self.first_day = calendar.first_session.date()
        self.last_day = calendar.last_session.date()

    def session_date(self, ts: datetime) -> date:
        """The exchange-local date of `ts`.

        For the exchanges this pipeline polls a session never spans local midnight, so this is the
        session a bar belongs to, whether Yahoo stamped it at the open or at the last trade
        (`meta.regularMarketTime`, e.g. 20:00:01Z = 16:00:01 New York).
        """
        if ts.tzinfo is None:
            raise ValueError(
                f"naive timestamp {ts!r}: every timestamp in the pipeline is UTC-aware"
            )
        return ts.astimezone(self.tz).date()

    def session(self, day: date) -> Session | None:
        """The session on `day`, or None when the exchange is closed (weekend, holiday)."""
        if not self.first_day <= day <= self.last_day:
            raise OutsideCalendarError(
                f"{day} is outside the {self.name} calendar ({self.first_day}..{self.last_day})"
            )
        return self._sessions.get(day)

    def session_at(self, ts: datetime) -> Session | None:
        """The session whose regular hours [open, close) contain `ts`, if any."""
        found = self.session(self.session_date(ts))
        if found is not None and found.open <= ts.astimezone(UTC) < found.close:
            return found
        return None


def get_calendar(name: str, start: date | None = None) -> ExchangeCalendar:
    """The calendar of exchange `name` (an exchange_calendars code such as XNYS), built once.

    With `start` before DEFAULT_START (the earliest date a request asks for), a calendar built
    from January 1st of that year: history before 2000 must not fail for want of sessions.
    """
    if start is None or start >= DEFAULT_START:
        return _calendar(name, DEFAULT_START)
    return _calendar(name, date(start.year, 1, 1))


@lru_cache(maxsize=8)
def _calendar(name: str, start: date) -> ExchangeCalendar:
    return ExchangeCalendar(name, start)
