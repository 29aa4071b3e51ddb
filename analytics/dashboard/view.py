"""Pure: what one poll of the page receives, as JSON-ready dicts (the figures and side panels)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, get_args

from analytics.dashboard.figures import figures, iso
from analytics.dashboard.queries import ActiveAlert, SeriesData
from analytics.dashboard.status import ServiceHealth
from pipeline.freshness import Freshness
from shared.settings import MarketSettings

# What a page may ask for: the intervals the pipeline knows and symbols as Yahoo spells them
# (BRK-B, ^GSPC, EURUSD=X). Anything else is refused with a reason before any SQL runs.
INTERVALS: tuple[str, ...] = get_args(MarketSettings.model_fields["interval"].annotation)
SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.\-^=]{0,19}|\^[A-Z0-9.\-=]{1,19}")


class BadRequest(ValueError):
    """A page asked for something that is not a series name (the reason goes back to it)."""


def checked_series(symbol: str | None, interval: str | None) -> tuple[str, str]:
    """(SYMBOL, interval) from query parameters, or BadRequest saying what is wrong."""
    symbol = (symbol or "").strip().upper()
    if not SYMBOL.fullmatch(symbol):
        raise BadRequest(f"symbol must be 1-20 of A-Z 0-9 . - ^ =, got {symbol[:40]!r}")
    if interval not in INTERVALS:
        raise BadRequest(f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
    return symbol, interval


def _when(ts: datetime | None) -> str | None:
    return None if ts is None else iso(ts)


def series_payload(
    data: SeriesData,
    active: Sequence[ActiveAlert],
    freshness: Sequence[Freshness],
    health: Sequence[ServiceHealth],
    now: datetime,
) -> dict[str, Any]:
    """Everything one refresh of the page draws."""
    return {
        "symbol": data.symbol,
        "interval": data.interval,
        "newest": _when(data.newest_ts),
        "bar_count": len(data.bars),
        "generated_at": iso(now),
        "figures": figures(data),
        "active_alerts": [
            {
                "symbol": a.symbol,
                "interval": a.interval,
                "rule": a.rule,
                "severity": a.severity,
                "message": a.message,
                "firing_since": iso(a.firing_since),
            }
            for a in active
        ],
        "freshness": [
            {
                "domain": f.domain,
                "state": str(f.state),
                "newest": _when(f.newest),
                "age_s": f.age_s,
                "detail": f.detail,
            }
            for f in freshness
        ],
        "health": [
            {"name": h.name, "status": h.status, "reasons": list(h.reasons), "notes": list(h.notes)}
            for h in health
        ],
    }


def series_list_payload(
    series: Sequence[tuple[str, str, datetime]], refresh_s: float
) -> dict[str, Any]:
    return {
        "refresh_s": refresh_s,
        "series": [{"symbol": s, "interval": i, "newest": iso(ts)} for s, i, ts in series],
    }
