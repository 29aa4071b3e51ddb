"""Pure parsing of FRED bodies into MacroObservation messages and dead letters."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from shared import services
from shared.schemas import DeadLetter, MacroObservation, MacroSeries, dead_letter, event_id

SERVICE = services.PRODUCER_MACRO.name
SOURCE = "fred"
MISSING = "."  # FRED's missing value: NULL, never a dropped date


@dataclass
class ParsedObservations:
    observations: list[MacroObservation] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def parse_series(body: dict[str, Any]) -> MacroSeries:
    """FRED's `seriess[0]` → metadata (`last_updated` like '2024-12-19 07:55:01-06')."""
    updated = body.get("last_updated")
    try:
        last_updated = datetime.strptime(f"{updated}00", "%Y-%m-%d %H:%M:%S%z") if updated else None
    except ValueError:
        last_updated = None
    return MacroSeries(
        title=body.get("title"),
        units=body.get("units"),
        frequency=body.get("frequency"),
        seasonal_adjustment=body.get("seasonal_adjustment"),
        last_updated=last_updated.astimezone(UTC) if last_updated else None,
    )


def _value(text: Any) -> float | None:
    if text == MISSING:
        return None
    if not isinstance(text, str):
        raise ValueError(f"value {text!r} is not a string")
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"value {text!r} is not finite")
    return number


def parse_observations(
    series_id: str, raw: list[dict[str, Any]], series: MacroSeries | None, now: datetime
) -> ParsedObservations:
    """Each observation as one vintage message; unparseable ones become dead letters."""
    parsed = ParsedObservations()
    for item in raw:
        try:
            obs_date = date.fromisoformat(item["date"])
            realtime_start = date.fromisoformat(item["realtime_start"])
            value = _value(item.get("value"))
        except (KeyError, TypeError, ValueError) as exc:
            reason = f"unparseable FRED observation of {series_id}: {exc}"
            parsed.dead_letters.append(dead_letter(SERVICE, SOURCE, series_id, reason, item, now))
            continue
        stamp = datetime.combine(obs_date, datetime.min.time(), UTC)
        parsed.observations.append(
            MacroObservation(
                event_id=event_id(SOURCE, series_id, realtime_start.isoformat(), stamp),
                source=SOURCE,
                series_id=series_id,
                obs_date=obs_date,
                realtime_start=realtime_start,
                value=value,
                series=series,
            )
        )
    return parsed
