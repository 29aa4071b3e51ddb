"""Pure parsing of one Yahoo chart fetch into closed Bars, counted drops and dead letters."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from producer.market.actions import basis_as_of, chart_actions, splits_by_day
from producer.market.windows import bar_key
from producer.yahoo_client import ChartFetch
from producer.yahoo_intervals import DAILY, INTERVAL_STEP
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
_PRICES = ("Open", "High", "Low", "Close")
_RAW_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass
class ParsedChart:
    """What one fetch yields: closed bars, drops by reason, and dead letters."""

    bars: list[Bar] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    # Each dead letter with the key of the point it rejects: tracked like that point's bar.
    rejected: list[tuple[datetime, DeadLetter]] = field(default_factory=list)
    actions: list[CorporateAction] = field(default_factory=list)

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return [letter for _, letter in self.rejected]


def fetched_splits(fetch: ChartFetch) -> dict[date, float]:
    """Split ratios (new shares per old) among the fetched chart's events, by their UTC date.

    Yahoo returns the events inside the requested window only (chart_actions keeps those, also
    when a replayed recording is wider). Without the raw chart, yfinance's "Stock Splits"
    column (the same ratios, on the bars' dates) is used.
    """
    if fetch.chart is not None:
        actions = chart_actions(fetch.chart, fetch.symbol, "", start=fetch.start, end=fetch.end)
        return splits_by_day(actions)
    splits: dict[date, float] = {}
    if "Stock Splits" in fetch.frame.columns:
        for stamp, ratio in fetch.frame["Stock Splits"].items():
            if ratio:
                splits[pd.Timestamp(stamp).tz_convert(UTC).date()] = float(ratio)
    return splits


def split_basis(fetch: ChartFetch, known_splits: Mapping[date, float]) -> float:
    """The cumulative split factor the fetched prices are expressed in.

    Rule: the product, in date order, of every split dated at or before the fetch: those of
    `known_splits` (Yahoo's whole-life split list of this poll, producer.market.events, and the
    splits producer.market delivered before, producer.store) and those in this chart's own
    events. Never a table storage writes: the basis depends on Yahoo's answers only.
    """
    return basis_as_of({**known_splits, **fetched_splits(fetch)}, fetch.fetched_at)


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
) -> ParsedChart:
    """Closed bars of `fetch`, and the corporate actions of its window; every point Yahoo sent
    is published, dropped or dead-lettered.

    Points outside [start, end) are counted from the raw chart, because yfinance silently
    removes a trailing point at or after `end` itself. Raw points inside the window that
    yfinance removed as pre/post-market are counted as outside the session; points yfinance
    merged into a neighbour (the live point, 30m resampling) are not drops. A bar is closed when
    its end (capped at its session's close) plus the settle delay is at or before the fetch.
    """
    keys = _Keys(fetch, calendar)
    parsed = ParsedChart()
    raw = _raw_points(fetch.chart, keys)
    parsed.dropped[OUTSIDE_WINDOW] += sum(not keys.in_window(key) for key, _ in raw)
    raw_points = dict(raw)
    basis = split_basis(fetch, known_splits or {})
    frame_keys: set[datetime] = set()
    for stamp, row in fetch.frame.iterrows():
        key = keys.of(pd.Timestamp(stamp).to_pydatetime())
        frame_keys.add(key)
        if not keys.in_window(key):
            if fetch.chart is None:  # otherwise already counted from the raw points
                parsed.dropped[OUTSIDE_WINDOW] += 1
            continue
        try:
            reason = _drop_reason(row, key, keys, include_prepost, settle_delay, fetch.fetched_at)
        except OutsideCalendarError:
            # Sessions unknown: this bar cannot be placed, its neighbours still can.
            reason = OUTSIDE_CALENDAR
        if reason is not None:
            parsed.dropped[reason] += 1
            continue
        try:
            bar = _bar(fetch, row, key, source, basis)
            validate_bar(bar)
        except (ValidationError, ValueError, OverflowError) as exc:
            payload = raw_points.get(key) or _frame_payload(stamp, row)
            parsed.rejected.append((key, _dead_letter(fetch, source, payload, str(exc))))
            continue
        parsed.bars.append(bar)
    if not include_prepost and not keys.daily:
        removed = [key for key in raw_points.keys() - frame_keys if keys.in_window(key)]
        for key in removed:
            try:
                parsed.dropped[OUTSIDE_SESSION] += calendar.session_at(key) is None
            except OutsideCalendarError:
                parsed.dropped[OUTSIDE_CALENDAR] += 1
    parsed.dropped = +parsed.dropped  # no zero counts in the report
    parsed.actions = chart_actions(
        fetch.chart, fetch.symbol, source, start=fetch.start, end=fetch.end
    )
    return parsed


def _raw_points(chart: dict[str, Any] | None, keys: _Keys) -> list[tuple[datetime, dict[str, Any]]]:
    """Each raw point with its bar key, as Yahoo sent it (the payload of a dead letter)."""
    if chart is None:
        return []
    quote = ((chart.get("indicators") or {}).get("quote") or [{}])[0]
    adjclose = ((chart.get("indicators") or {}).get("adjclose") or [{}])[0].get("adjclose")
    points: list[tuple[datetime, dict[str, Any]]] = []
    for i, seconds in enumerate(chart.get("timestamp") or []):
        point: dict[str, Any] = {"timestamp": seconds}
        for name in _RAW_FIELDS:
            values = quote.get(name) or []
            point[name] = values[i] if i < len(values) else None
        if adjclose is not None:
            point["adjclose"] = adjclose[i] if i < len(adjclose) else None
        points.append((keys.of(datetime.fromtimestamp(seconds, UTC)), point))
    return points


def _drop_reason(
    row: pd.Series,
    key: datetime,
    keys: _Keys,
    include_prepost: bool,
    settle_delay: timedelta,
    fetched_at: datetime,
) -> str | None:
    if all(pd.isna(row[name]) for name in _PRICES) and pd.isna(row.get("Adj Close")):
        return ALL_NULL
    if keys.daily:
        session = keys.calendar.session(key.date())
        if session is None:
            return OUTSIDE_SESSION
        end = session.close
    else:
        session = keys.calendar.session_at(key)
        if session is None and not include_prepost:
            return OUTSIDE_SESSION
        # The session's last bar is cut short by the close (a 90m bar opening 15:30 ends 16:00).
        end = key + keys.step if session is None else min(key + keys.step, session.close)
    return UNCLOSED if end + settle_delay > fetched_at else None


def _bar(fetch: ChartFetch, row: pd.Series, key: datetime, source: str, basis: float) -> Bar:
    missing = [name.lower() for name in _PRICES if pd.isna(row[name])]
    if missing:
        raise ValueError(f"some but not all prices are null: {', '.join(missing)}")
    # Yahoo sends adjclose for daily bars only; yfinance copies Close into it for intraday bars,
    # which is not an adjusted close.
    adj = row.get("Adj Close") if fetch.interval == DAILY else None
    volume = float(row["Volume"])
    if not math.isfinite(volume) or volume != int(volume):
        raise ValueError(f"volume {volume!r} is not a whole number")
    return Bar(
        event_id=event_id(source, fetch.symbol, fetch.interval, key),
        source=source,
        symbol=fetch.symbol,
        interval=fetch.interval,
        ts=key,
        open=float(row["Open"]),
        high=float(row["High"]),
        low=float(row["Low"]),
        close=float(row["Close"]),
        adj_close=None if adj is None or pd.isna(adj) else float(adj),
        volume=int(volume),
        split_basis=basis,
        fetched_at=fetch.fetched_at,
    )


def _frame_payload(stamp: Any, row: pd.Series) -> dict[str, Any]:
    values = {str(k): (None if pd.isna(v) else float(v)) for k, v in row.items()}
    return {"timestamp": str(stamp), **values}


def _dead_letter(
    fetch: ChartFetch, source: str, payload: dict[str, Any], reason: str
) -> DeadLetter:
    return dead_letter(
        SERVICE,
        source,
        fetch.symbol,
        f"{fetch.symbol} {fetch.interval}: {reason}",
        payload,
        fetch.fetched_at,
    )
