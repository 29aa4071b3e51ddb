"""Pure parsing of Yahoo chart `events` into corporate actions, and the split basis they give."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from shared.schemas import CorporateAction, event_id


def chart_actions(
    chart: Mapping[str, Any] | None,
    symbol: str,
    source: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[CorporateAction]:
    """Splits and dividends of a raw chart's `events` (dicts keyed by the timestamp), by time.

    With `start`/`end`, only the events in [start, end): Yahoo lists the events inside the
    requested window only, so a recording wider than the request (replay) must not tell more
    than Yahoo would. Raises ValueError for an event without a readable date or ratio.
    """
    events = (chart or {}).get("events") or {}
    actions: list[CorporateAction] = []
    for kind, field in (("split", "splits"), ("dividend", "dividends")):
        for event in (events.get(field) or {}).values():
            when = event.get("date")
            if not isinstance(when, int | float) or isinstance(when, bool):
                raise ValueError(f"unreadable {kind} event {event!r}")
            ts = datetime.fromtimestamp(when, UTC)
            if (start is not None and ts < start) or (end is not None and ts >= end):
                continue
            ratio = amount = None
            if kind == "split":
                numerator, denominator = event.get("numerator"), event.get("denominator")
                if not numerator or not denominator:
                    raise ValueError(f"unreadable split event {event!r}")
                ratio = float(numerator) / float(denominator)
            else:
                amount = float(event["amount"])
            actions.append(
                CorporateAction(
                    event_id=event_id(source, symbol, kind, ts),
                    source=source,
                    symbol=symbol,
                    ts=ts,
                    kind=kind,
                    ratio=ratio,
                    amount=amount,
                )
            )
    return sorted(actions, key=lambda a: (a.ts, a.kind))


def splits_by_day(actions: Iterable[CorporateAction]) -> dict[date, float]:
    """Split ratios (new shares per old) by their UTC date (the event's time and its bar's
    differ for the same split, so the day is the key)."""
    return {
        a.ts.astimezone(UTC).date(): a.ratio
        for a in actions
        if a.kind == "split" and a.ratio is not None and a.ratio > 0
    }


def basis_as_of(splits: Mapping[date, float], fetched_at: datetime) -> float:
    """The cumulative split factor of prices fetched at `fetched_at`: the product, in date
    order, of every split dated on or before the fetch's day."""
    fetch_day = fetched_at.astimezone(UTC).date()
    basis = 1.0
    for day in sorted(splits):
        if day <= fetch_day:
            basis *= splits[day]
    return basis
