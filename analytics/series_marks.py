"""What is drawn over a series' bars, read the same way for the PNG chart (analytics.chart) and
the dashboard: the newest forecast, alert state changes and splits inside the drawn window.

The forecast is brought to the newest split basis by its origin bar's factor, as the bars are
(`bars_with_indicators_adjusted`), so a cone made before a split sits on the adjusted prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

SELECT_FORECAST = """
SELECT f.origin_ts, f.step, f.target_ts, f.median * a.price_factor, f.lo80 * a.price_factor,
       f.hi80 * a.price_factor, f.lo95 * a.price_factor, f.hi95 * a.price_factor
FROM latest_forecasts f
JOIN price_bars_adjusted a
  ON (a.symbol, a.interval, a.ts) = (f.symbol, f.interval, f.origin_ts)
WHERE f.symbol = %(symbol)s AND f.interval = %(interval)s AND f.model = %(model)s
ORDER BY f.step
"""
SELECT_ALERT_MARKS = """
SELECT bar_ts, rule, severity, state, message
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
    origin_ts: datetime
    step: int
    target_ts: datetime | None
    median: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float


@dataclass(frozen=True)
class AlertMark:
    bar_ts: datetime
    rule: str
    severity: str
    state: str  # firing | resolved
    message: str


@dataclass(frozen=True)
class SplitMark:
    ts: datetime
    ratio: float


def read_forecast(
    conn: psycopg.Connection, symbol: str, interval: str, model: str = "arima"
) -> list[ForecastStep]:
    """The newest origin's forecast of `model`, step by step (empty: none yet)."""
    params = {"symbol": symbol, "interval": interval, "model": model}
    return [ForecastStep(*row) for row in conn.execute(SELECT_FORECAST, params)]


def read_alert_marks(
    conn: psycopg.Connection, symbol: str, interval: str, since: datetime
) -> list[AlertMark]:
    """The series' alert state changes at bars from `since` on, in id order."""
    params = {"symbol": symbol, "interval": interval, "since": since}
    return [AlertMark(*row) for row in conn.execute(SELECT_ALERT_MARKS, params)]


def read_splits(conn: psycopg.Connection, symbol: str, since: datetime) -> list[SplitMark]:
    params = {"symbol": symbol, "since": since}
    return [SplitMark(*row) for row in conn.execute(SELECT_SPLITS, params)]
