"""What a chart of one series shows, read from PostgreSQL (the drawing in analytics/chart.py is
pure): bars and indicators on the newest split basis, the newest forecast, alerts, splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

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
# The newest ARIMA forecast, brought to the newest basis by its origin bar's factor.
SELECT_FORECAST = """
SELECT f.origin_ts, f.step, f.target_ts, f.median * a.price_factor, f.lo80 * a.price_factor,
       f.hi80 * a.price_factor, f.lo95 * a.price_factor, f.hi95 * a.price_factor
FROM latest_forecasts f
JOIN price_bars_adjusted a
  ON (a.symbol, a.interval, a.ts) = (f.symbol, f.interval, f.origin_ts)
WHERE f.symbol = %(symbol)s AND f.interval = %(interval)s AND f.model = %(model)s
ORDER BY f.step
"""
SELECT_ALERTS = """
SELECT bar_ts, state, rule, severity
FROM alert_events
WHERE symbol = %(symbol)s AND interval = %(interval)s AND bar_ts >= %(since)s
ORDER BY id
"""
SELECT_SPLITS = """
SELECT ts, ratio FROM corporate_actions
WHERE symbol = %(symbol)s AND kind = 'split' AND ts >= %(since)s
ORDER BY ts
"""


@dataclass(frozen=True)
class ForecastStep:
    target_ts: datetime
    median: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float


@dataclass(frozen=True)
class AlertMark:
    ts: datetime
    state: str  # firing | resolved
    rule: str
    severity: str


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
    forecast_origin: datetime | None = None
    forecast: list[ForecastStep] = field(default_factory=list)
    alerts: list[AlertMark] = field(default_factory=list)
    splits: list[tuple[datetime, float]] = field(default_factory=list)


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
    since = {"symbol": symbol, "interval": interval, "since": data.ts[0]}
    for origin, _step, target, *bounds in conn.execute(
        SELECT_FORECAST, {**params, "model": model}
    ).fetchall():
        data.forecast_origin = origin
        data.forecast.append(ForecastStep(target, *bounds))
    data.alerts = [AlertMark(*row) for row in conn.execute(SELECT_ALERTS, since).fetchall()]
    data.splits = list(conn.execute(SELECT_SPLITS, since).fetchall())
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
