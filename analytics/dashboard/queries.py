"""The dashboard's SQL (read-only) and the plain rows it hands the pure figure code; the marks
drawn over the bars (forecast, alerts, splits) are analytics/series_marks.py's, as the chart's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from analytics.series_marks import (
    AlertMark,
    ForecastStep,
    SplitMark,
    read_alert_marks,
    read_forecast,
    read_splits,
)

# Prices on the newest split basis, with the price-valued indicators brought to it as well:
# a split in the window draws as one continuous line (and its marker), never as a cliff.
# The newest N bars, returned oldest first.
SELECT_BARS = """
SELECT ts, open, high, low, close, volume, bb_lower, bb_middle, bb_upper, rsi, macd,
       macd_signal, macd_hist
FROM (
    SELECT * FROM bars_with_indicators_adjusted
    WHERE symbol = %s AND interval = %s
    ORDER BY ts DESC
    LIMIT %s
) newest
ORDER BY ts
"""
SELECT_ACTIVE_ALERTS = """
SELECT symbol, interval, rule, severity, message, firing_since
FROM active_alerts
ORDER BY firing_since DESC, id DESC
LIMIT %s
"""
# The newest row of each of the series' domains (primary-key probes, newest first).
SELECT_SERIES_NEWEST = """
SELECT (SELECT ts FROM latest_bars WHERE symbol = %(symbol)s AND interval = %(interval)s),
       (SELECT ts FROM indicators WHERE symbol = %(symbol)s AND interval = %(interval)s
        ORDER BY ts DESC LIMIT 1),
       (SELECT origin_ts FROM forecast_origins
        WHERE symbol = %(symbol)s AND interval = %(interval)s ORDER BY origin_ts DESC LIMIT 1)
"""
# The series there are to choose from (one primary-key probe per series).
SELECT_SERIES = "SELECT symbol, interval, ts FROM latest_bars ORDER BY symbol, interval"


@dataclass(frozen=True)
class BarRow:
    """One bar with the indicators drawn beside it (None during warm-up)."""

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    bb_lower: float | None
    bb_middle: float | None
    bb_upper: float | None
    rsi: float | None
    macd: float | None
    macd_signal: float | None
    macd_hist: float | None


@dataclass(frozen=True)
class ActiveAlert:
    symbol: str
    interval: str
    rule: str
    severity: str
    message: str
    firing_since: datetime


@dataclass(frozen=True)
class SeriesData:
    """Everything the charts of one series need, read in one snapshot."""

    symbol: str
    interval: str
    bars: list[BarRow]
    forecast: list[ForecastStep]
    alerts: list[AlertMark]
    splits: list[SplitMark]

    @property
    def newest_ts(self) -> datetime | None:
        return self.bars[-1].ts if self.bars else None


def read_series(conn: psycopg.Connection, symbol: str, interval: str, limit: int) -> SeriesData:
    """The newest `limit` bars of a series and what is drawn over them. Run inside one
    REPEATABLE READ transaction (the caller's), so the panels agree with each other."""
    bars = [BarRow(*row) for row in conn.execute(SELECT_BARS, (symbol, interval, limit))]
    if not bars:
        return SeriesData(symbol, interval, [], [], [], [])
    start = bars[0].ts
    forecast = read_forecast(conn, symbol, interval)
    alerts = read_alert_marks(conn, symbol, interval, start)
    return SeriesData(symbol, interval, bars, forecast, alerts, read_splits(conn, symbol, start))


def read_active_alerts(conn: psycopg.Connection, limit: int = 50) -> list[ActiveAlert]:
    return [ActiveAlert(*row) for row in conn.execute(SELECT_ACTIVE_ALERTS, (limit,))]


def read_series_list(conn: psycopg.Connection) -> list[tuple[str, str, datetime]]:
    """(symbol, interval, newest bar time) of every stored series."""
    return [(s, i, ts) for s, i, ts in conn.execute(SELECT_SERIES)]


def read_series_newest(
    conn: psycopg.Connection, symbol: str, interval: str
) -> dict[str, datetime | None]:
    """The newest bar, indicator row and forecast origin of one series (None: none yet)."""
    row = conn.execute(SELECT_SERIES_NEWEST, {"symbol": symbol, "interval": interval}).fetchone()
    bars, indicators, forecasts = row if row is not None else (None, None, None)
    return {"bars": bars, "indicators": indicators, "forecasts": forecasts}
