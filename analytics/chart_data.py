"""What a chart of one series shows, read from PostgreSQL (the drawing in analytics/chart.py is
pure): bars and indicators on the newest split basis; the marks over them (the newest forecast,
alerts, splits) come from analytics/series_marks.py, as the dashboard's do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from analytics.series_marks import (
    AlertMark,
    ForecastStep,
    SplitMark,
    read_alert_marks,
    read_forecast,
    read_splits,
)

# Prices on the newest split basis, so a split is no cliff; the window ends at the series' newest
# bar (not now), so a chart of stored history is never empty.
SELECT_BARS = """
WITH newest AS (
    SELECT max(ts) AS ts FROM price_bars WHERE symbol = %(symbol)s AND interval = %(interval)s
)
SELECT b.ts, b.close, b.bb_lower, b.bb_middle, b.bb_upper, b.rsi, b.macd, b.macd_signal,
       b.macd_hist
FROM bars_with_indicators_adjusted b, newest
WHERE b.symbol = %(symbol)s AND b.interval = %(interval)s
  AND b.ts > newest.ts - %(span)s
ORDER BY b.ts
"""


@dataclass
class ChartData:
    """One series' columns (None where an indicator warms up) and its marks."""

    symbol: str
    interval: str
    ts: list[datetime] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    bb_lower: list[float | None] = field(default_factory=list)
    bb_middle: list[float | None] = field(default_factory=list)
    bb_upper: list[float | None] = field(default_factory=list)
    rsi: list[float | None] = field(default_factory=list)
    macd: list[float | None] = field(default_factory=list)
    macd_signal: list[float | None] = field(default_factory=list)
    macd_hist: list[float | None] = field(default_factory=list)
    forecast: list[ForecastStep] = field(default_factory=list)
    alerts: list[AlertMark] = field(default_factory=list)
    splits: list[SplitMark] = field(default_factory=list)

    @property
    def forecast_origin(self) -> datetime | None:
        return self.forecast[0].origin_ts if self.forecast else None


def read_chart_data(
    conn: psycopg.Connection, symbol: str, interval: str, days: int, model: str = "arima"
) -> ChartData:
    """The last `days` calendar days of the series up to its newest bar, and their marks."""
    data = ChartData(symbol, interval)
    params = {"symbol": symbol, "interval": interval, "span": timedelta(days=days)}
    for row in conn.execute(SELECT_BARS, params).fetchall():
        for name, value in zip(_BAR_COLUMNS, row, strict=True):
            getattr(data, name).append(value)
    if not data.ts:
        return data
    data.forecast = read_forecast(conn, symbol, interval, model)
    data.alerts = read_alert_marks(conn, symbol, interval, data.ts[0])
    data.splits = read_splits(conn, symbol, data.ts[0])
    return data


_BAR_COLUMNS = (
    "ts",
    "close",
    "bb_lower",
    "bb_middle",
    "bb_upper",
    "rsi",
    "macd",
    "macd_signal",
    "macd_hist",
)
