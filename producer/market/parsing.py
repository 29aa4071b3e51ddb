"""Pure parsing of one Yahoo chart fetch into closed Bars, counted drops and dead letters."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from producer.market.actions import basis_as_of, chart_actions, splits_by_day
from producer.market.chart_points import (
    ChartPoint,
    distinct,
    fold_live_point,
    read_points,
    resample,
)
from producer.market.windows import bar_key
from producer.yahoo_client import ChartFetch
from producer.yahoo_intervals import DAILY, INTERVAL_STEP, fetch_interval
from shared import services
from shared.calendar import ExchangeCalendar, OutsideCalendarError
from shared.errors import ValidationError
from shared.schemas import Bar, CorporateAction, DeadLetter, dead_letter, event_id
from shared.validation import validate_bar

SERVICE = services.PRODUCER_MARKET.name

# Why an expected API artefact was dropped (the `reason` label of shared.metrics.DROPPED).
OUTSIDE_WINDOW = "outside_window"  # Yahoo appends the latest price after the requested end
OUTSIDE_SESSION = "outside_session"  # pre/post-market (while off), or a day the exchange is shut
ALL_NULL = "all_null"  # every field null: Yahoo's gaps
UNCLOSED = "unclosed"  # still forming, or within the settle delay, when fetched
OUTSIDE_CALENDAR = "outside_calendar"  # a day the exchange calendar has no sessions for
_PRICES = ("open", "high", "low", "close")


@dataclass
class ParsedChart:
    """What one fetch yields: closed bars, drops by reason, dead letters, and the corporate
    actions of its window."""

    bars: list[Bar] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    # Each dead letter with the key of the point it rejects: tracked like that point's bar.
    rejected: list[tuple[datetime, DeadLetter]] = field(default_factory=list)
    actions: list[CorporateAction] = field(default_factory=list)

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return [letter for _, letter in self.rejected]

    @property
    def splits(self) -> dict[date, float]:
        """The split ratios among this window's own events, by their UTC date."""
        return splits_by_day(self.actions)


def recorded_fetch_time(chart: Mapping[str, Any] | None) -> datetime | None:
    """When a recorded chart was fetched, at the earliest: its `meta.regularMarketTime`.

    Replay uses it as `fetched_at`, so a bar still forming when it was recorded is dropped as
    not closed, as it was live (None when the body does not say).
    """
    seconds = ((chart or {}).get("meta") or {}).get("regularMarketTime")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds, UTC)


class _Keys:
    """Bar keys of one fetch: open time (intraday) or session date at 00:00 UTC (daily)."""

    def __init__(self, fetch: ChartFetch, calendar: ExchangeCalendar) -> None:
        self.interval = fetch.interval
        self.daily = fetch.interval == DAILY
        self.step = INTERVAL_STEP[fetch.interval]
        self.calendar = calendar
        self.start, self.end = fetch.start, fetch.end
        self.first_day = calendar.session_date(fetch.start)
        self.last_day = calendar.session_date(fetch.end - timedelta(microseconds=1))

    def of(self, moment: datetime) -> datetime:
        if self.daily:
            local = moment.astimezone(self.calendar.tz)
            # Yahoo stamps some daily points an hour or two before the local midnight it means
            # (yfinance's fix_Yahoo_dst_issue moves them to that midnight).
            if local.minute == 0 and local.hour in (22, 23):
                moment += timedelta(hours=24 - local.hour)
        return bar_key(self.interval, moment, self.calendar)

    def in_window(self, key: datetime) -> bool:
        if self.daily:
            return self.first_day <= key.date() <= self.last_day
        return self.start <= key < self.end


def parse_chart(
    fetch: ChartFetch,
    calendar: ExchangeCalendar,
    *,
    source: str,
    include_prepost: bool,
    settle_delay: timedelta,
    known_splits: Mapping[date, float] | None = None,
    replay: bool = False,
) -> ParsedChart:
    """Closed bars of `fetch`, and the corporate actions of its window, from the raw chart
    alone; every point Yahoo sent is published, dropped or dead-lettered.

    A point outside [start, end) is dropped (Yahoo appends its latest price after `end`);
    intraday without pre/post-market, so is one outside the session. The remaining points are
    reshaped as yfinance would (30m from 15m, the live point folded in, a repeated stamp kept
    once): a point merged into a neighbour is not a drop. A bar is closed when its end (capped
    at its session's close) plus the settle delay is at or before the fetch; in `replay`, the
    fetch is the recording's own (its `meta.regularMarketTime`).
    """
    keys = _Keys(fetch, calendar)
    fetched_at = (replay and recorded_fetch_time(fetch.chart)) or fetch.fetched_at
    parsed = ParsedChart()
    parsed.actions = chart_actions(
        fetch.chart, fetch.symbol, source, start=fetch.start, end=fetch.end
    )
    basis = basis_as_of({**(known_splits or {}), **parsed.splits}, fetched_at)
    points = _in_window(read_points(fetch.chart, keys.of), keys, parsed.dropped)
    granularity = fetch_interval(fetch.interval)
    if granularity != fetch.interval:
        points = resample(points, keys.step)
    if not include_prepost and not keys.daily:
        points = _in_sessions(points, calendar, parsed.dropped)
    points = distinct(fold_live_point(points, INTERVAL_STEP[granularity], include_prepost))
    for point in points:
        try:
            reason = _drop_reason(point, keys, settle_delay, fetched_at)
        except OutsideCalendarError:
            # Sessions unknown: this bar cannot be placed, its neighbours still can.
            reason = OUTSIDE_CALENDAR
        if reason is not None:
            parsed.dropped[reason] += 1
            continue
        try:
            bar = _bar(fetch, point, source, basis, fetched_at)
            validate_bar(bar)
        except (ValidationError, ValueError, OverflowError) as exc:
            letter = _dead_letter(fetch, source, point.payload, str(exc), fetched_at)
            parsed.rejected.append((point.key, letter))
            continue
        parsed.bars.append(bar)
    parsed.dropped = +parsed.dropped  # no zero counts in the report
    return parsed


def _in_window(points: list[ChartPoint], keys: _Keys, dropped: Counter[str]) -> list[ChartPoint]:
    """The points inside the requested window; the others counted."""
    if points and points[-1].moment >= keys.end:
        # Yahoo's latest price appended after the requested end (yfinance removes it), also
        # when its session date is inside the window.
        dropped[OUTSIDE_WINDOW] += 1
        points = points[:-1]
    kept = [point for point in points if keys.in_window(point.key)]
    dropped[OUTSIDE_WINDOW] += len(points) - len(kept)
    return kept


def _in_sessions(
    points: list[ChartPoint], calendar: ExchangeCalendar, dropped: Counter[str]
) -> list[ChartPoint]:
    """The intraday points inside a regular session; the others counted (pre/post-market off:
    yfinance removes them before the live point is folded in)."""
    kept = []
    for point in points:
        try:
            inside = calendar.session_at(point.key) is not None
        except OutsideCalendarError:
            dropped[OUTSIDE_CALENDAR] += 1
            continue
        if inside:
            kept.append(point)
        else:
            dropped[OUTSIDE_SESSION] += 1
    return kept


def _drop_reason(
    point: ChartPoint, keys: _Keys, settle_delay: timedelta, fetched_at: datetime
) -> str | None:
    if point.all_null:
        return ALL_NULL
    if keys.daily:
        session = keys.calendar.session(point.key.date())
        if session is None:
            return OUTSIDE_SESSION
        end = session.close
    else:
        # Outside the session only with pre/post-market on: _in_sessions removed the others.
        session = keys.calendar.session_at(point.key)
        # The session's last bar is cut short by the close (a 90m bar opening 15:30 ends 16:00).
        end = point.key + keys.step
        if session is not None:
            end = min(end, session.close)
    return UNCLOSED if end + settle_delay > fetched_at else None


def _bar(
    fetch: ChartFetch, point: ChartPoint, source: str, basis: float, fetched_at: datetime
) -> Bar:
    missing = [name for name in _PRICES if getattr(point, name) is None]
    if missing:
        raise ValueError(f"some but not all prices are null: {', '.join(missing)}")
    # Yahoo sends adjclose for daily bars only (intraday it stands in the close).
    adj = point.adjclose if fetch.interval == DAILY else None
    # A missing volume is none traded (yfinance fills it with 0).
    volume = 0.0 if point.volume is None else float(point.volume)
    if not math.isfinite(volume) or volume != int(volume):
        raise ValueError(f"volume {point.volume!r} is not a whole number")
    return Bar(
        event_id=event_id(source, fetch.symbol, fetch.interval, point.key),
        source=source,
        symbol=fetch.symbol,
        interval=fetch.interval,
        ts=point.key,
        open=float(point.open),
        high=float(point.high),
        low=float(point.low),
        close=float(point.close),
        adj_close=None if adj is None else float(adj),
        volume=int(volume),
        split_basis=basis,
        fetched_at=fetched_at,
    )


def _dead_letter(
    fetch: ChartFetch, source: str, payload: dict[str, Any], reason: str, fetched_at: datetime
) -> DeadLetter:
    return dead_letter(
        SERVICE,
        source,
        fetch.symbol,
        f"{fetch.symbol} {fetch.interval}: {reason}",
        payload,
        fetched_at,
    )
