"""Data freshness per domain: newest timestamps, SLAs and the exchange calendar → fresh or stale.

Pure (no I/O): the monitor service, `python -m pipeline status` and the analyst dashboard feed it
the newest timestamps they read (pipeline/freshness_reader.py) and show what it says.

Market data cannot be late while the market is shut, so an SLA is counted on the exchange's
clock, not the wall clock (a weekend or a holiday is never stale):

- `Mode.SESSIONS` (daily series, news): stale when `allowed_sessions` sessions have closed, plus
  the SLA, after the newest data's coverage and nothing newer came. A daily bar covers its
  whole session (it is keyed by the session date at 00:00 UTC), so Friday's bar is fresh all
  weekend and Monday's is owed at Monday's close + SLA.
- `Mode.MARKET_TIME` (intraday series): stale when more than the SLA of in-session time has
  passed since the newest data; the night and the weekend do not count.
- `Mode.WALL` (macro observations, published monthly or quarterly): plain age against the SLA.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from shared.calendar import ExchangeCalendar, Session
from shared.settings import FreshnessSettings

# The domains, in the order every screen shows them.
DOMAINS = ("bars", "indicators", "forecasts", "articles", "observations")


class Mode(StrEnum):
    SESSIONS = "sessions"
    MARKET_TIME = "market_time"
    WALL = "wall"


class State(StrEnum):
    FRESH = "fresh"
    STALE = "stale"
    # Nothing stored yet (a new pipeline, or a source disabled for want of its key): not red.
    EMPTY = "no data"


@dataclass(frozen=True)
class DomainSla:
    """How one domain's freshness is judged."""

    domain: str
    sla_s: float
    mode: Mode
    # Timestamps are session dates at 00:00 UTC (daily bars): each covers its session's close.
    daily: bool = False
    # SESSIONS mode: how many closed sessions may pass without new data (an origin every N bars).
    allowed_sessions: int = 1


@dataclass(frozen=True)
class Freshness:
    """One domain's verdict at `now`."""

    domain: str
    state: State
    newest: datetime | None
    # Wall-clock age of the newest data (what people read), None when there is none.
    age_s: float | None
    # How far past its SLA the domain is (0 when fresh), on the clock of its mode.
    overdue_s: float
    detail: str

    @property
    def stale(self) -> bool:
        return self.state is State.STALE


# Seconds per bar of each intraday interval Yahoo serves (the forecasts' allowance).
_INTERVAL_S = {
    "1m": 60,
    "2m": 120,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "60m": 3600,
    "90m": 5400,
    "1h": 3600,
}


def slas_for(settings: FreshnessSettings, interval: str, forecast_every: int) -> list[DomainSla]:
    """The SLAs of every domain for a pipeline polling `interval` bars.

    Daily series are owed once per session; intraday ones are judged in market time. Forecasts
    come every `forecast_every` bars (FORECAST_EVERY), so that many bars may pass without one.
    """
    daily = interval == "1d"
    series = Mode.SESSIONS if daily else Mode.MARKET_TIME
    every_s = 0.0 if daily else forecast_every * _INTERVAL_S[interval]
    return [
        DomainSla("bars", settings.bars_sla_s, series, daily=daily),
        DomainSla("indicators", settings.indicators_sla_s, series, daily=daily),
        DomainSla(
            "forecasts",
            settings.forecasts_sla_s + every_s,
            series,
            daily=daily,
            allowed_sessions=forecast_every if daily else 1,
        ),
        DomainSla("articles", settings.articles_sla_s, Mode.SESSIONS),
        DomainSla("observations", settings.observations_sla_s, Mode.WALL),
    ]


def assess(
    newest: Mapping[str, datetime | None],
    slas: Sequence[DomainSla],
    calendar: ExchangeCalendar,
    now: datetime,
) -> list[Freshness]:
    """Each domain of `slas` judged at `now` (UTC-aware) from its newest timestamp."""
    if now.tzinfo is None:
        raise ValueError("now must be UTC-aware")
    return [_assess_one(newest.get(sla.domain), sla, calendar, now) for sla in slas]


def _assess_one(
    newest: datetime | None, sla: DomainSla, calendar: ExchangeCalendar, now: datetime
) -> Freshness:
    if newest is None:
        return Freshness(sla.domain, State.EMPTY, None, None, 0.0, "nothing stored yet")
    age = max(0.0, (now - newest).total_seconds())
    if sla.mode is Mode.WALL:
        overdue = age - sla.sla_s
        detail = f"age {_human(age)} (SLA {_human(sla.sla_s)})"
    elif sla.mode is Mode.MARKET_TIME:
        market = market_seconds(calendar, newest, now)
        overdue = market - sla.sla_s
        detail = f"{_human(market)} of market time (SLA {_human(sla.sla_s)})"
    else:
        due = _owed_since(calendar, coverage(calendar, newest, sla.daily), now, sla)
        overdue = -1.0 if due is None else (now - due).total_seconds()
        detail = (
            f"newer data owed {_closes(sla.allowed_sessions)} later + {_human(sla.sla_s)}"
            if due is None
            else f"owed since {due:%Y-%m-%d %H:%M}Z"
        )
    state = State.STALE if overdue > 0 else State.FRESH
    return Freshness(sla.domain, state, newest, age, max(0.0, overdue), detail)


def coverage(calendar: ExchangeCalendar, ts: datetime, daily: bool) -> datetime:
    """Up to when data stamped `ts` covers the market: a daily bar its session's close."""
    if not daily:
        return ts
    session = _session_or_none(calendar, ts.astimezone(UTC).date())
    return session.close if session is not None else ts


def _owed_since(
    calendar: ExchangeCalendar, covered: datetime, now: datetime, sla: DomainSla
) -> datetime | None:
    """When data newer than `covered` became overdue (the allowed-th session close after it,
    plus the SLA), or None when that moment is still ahead of `now`."""
    closes = 0
    day = covered.astimezone(calendar.tz).date()
    last = now.astimezone(calendar.tz).date()
    while day <= last:
        session = _session_or_none(calendar, day)
        if session is not None and session.close > covered:
            closes += 1
            if closes >= sla.allowed_sessions:
                due = session.close + timedelta(seconds=sla.sla_s)
                return due if due < now else None
        day += timedelta(days=1)
    return None


def market_seconds(calendar: ExchangeCalendar, start: datetime, end: datetime) -> float:
    """In-session seconds between `start` and `end` (regular hours of the exchange)."""
    if end <= start:
        return 0.0
    total = 0.0
    day = start.astimezone(calendar.tz).date()
    last = end.astimezone(calendar.tz).date()
    while day <= last:
        session = _session_or_none(calendar, day)
        if session is not None:
            overlap = min(end, session.close) - max(start, session.open)
            total += max(0.0, overlap.total_seconds())
        day += timedelta(days=1)
    return total


def _session_or_none(calendar: ExchangeCalendar, day: date) -> Session | None:
    try:
        return calendar.session(day)
    except ValueError:  # outside the calendar's years: no session known
        return None


def _closes(count: int) -> str:
    return "a session close" if count == 1 else f"{count} session closes"


def _human(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
