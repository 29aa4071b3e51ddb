"""Which bars are forecast origins: every N-th slot of an anchor index the caller provides (the
exchange-calendar session index for daily bars), never the series' own bar count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache

import exchange_calendars
import numpy as np
import pandas as pd

from ml.params import ForecastParams
from shared.calendar import DEFAULT_START


def is_origin(anchor: int, bars: int, params: ForecastParams) -> bool:
    """Whether the bar at `anchor` is an origin of a series that has `bars` bars up to and
    including it: its anchor is a multiple of N and the series has at least M bars.

    A backfill of older bars changes `bars` but no anchor, so it can only add origins where the
    series was too short before; the origins already made stay where they are. A bar missing
    from the series (a halted session) on a multiple of N skips that origin.
    """
    return anchor % params.every == 0 and bars >= params.min_bars


def origins(anchors: Sequence[int], params: ForecastParams) -> list[int]:
    """Positions (0-based) of the origins of a series whose bars have these strictly increasing
    anchors, oldest first."""
    if any(b <= a for a, b in zip(anchors, anchors[1:], strict=False)):
        raise ValueError("anchors must be strictly increasing")
    return [i for i, anchor in enumerate(anchors) if is_origin(anchor, i + 1, params)]


@lru_cache(maxsize=8)
def _sessions(exchange: str) -> pd.DatetimeIndex:
    calendar = exchange_calendars.get_calendar(exchange, start=DEFAULT_START.isoformat())
    return calendar.sessions


def session_anchors(days: Sequence[date], exchange: str = "XNYS") -> list[int]:
    """Each session date's index among `exchange`'s sessions from shared.calendar.DEFAULT_START
    (the anchor of daily bars). A date that is not a session raises ValueError."""
    sessions = _sessions(exchange)
    positions = sessions.get_indexer(pd.DatetimeIndex([pd.Timestamp(day) for day in days]))
    if np.any(positions < 0):
        missing = [str(day) for day, pos in zip(days, positions, strict=True) if pos < 0]
        raise ValueError(f"not {exchange} sessions: {', '.join(missing[:5])}")
    return [int(pos) for pos in positions]
