"""The newest timestamp of each freshness domain, read from PostgreSQL (the SQL beside the pure
pipeline/freshness.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import psycopg

# One index probe per series (latest_bars skips through the primary key), not a scan of the
# history: these run once a minute against tables of hundreds of millions of rows.
NEWEST_BAR = "SELECT max(ts) FROM latest_bars WHERE interval = %s"
NEWEST_INDICATOR = """
SELECT max(i.ts)
FROM (SELECT DISTINCT symbol FROM latest_bars WHERE interval = %(interval)s) s
CROSS JOIN LATERAL (
    SELECT ts FROM indicators
    WHERE symbol = s.symbol AND interval = %(interval)s
    ORDER BY ts DESC LIMIT 1
) i
"""
NEWEST_FORECAST_ORIGIN = """
SELECT max(f.origin_ts)
FROM (SELECT DISTINCT symbol FROM latest_bars WHERE interval = %(interval)s) s
CROSS JOIN LATERAL (
    SELECT origin_ts FROM forecast_origins
    WHERE symbol = s.symbol AND interval = %(interval)s
    ORDER BY origin_ts DESC LIMIT 1
) f
"""
NEWEST_ARTICLE = "SELECT max(published_at) FROM news_articles"
NEWEST_OBSERVATION = "SELECT max(obs_date) FROM macro_observations"


def newest_timestamps(conn: psycopg.Connection, interval: str) -> dict[str, datetime | None]:
    """Newest bar, indicator, forecast origin (of `interval`), article and observation date."""
    params = {"interval": interval}
    with conn.cursor() as cur:
        bars = cur.execute(NEWEST_BAR, (interval,)).fetchone()[0]
        indicators = cur.execute(NEWEST_INDICATOR, params).fetchone()[0]
        forecasts = cur.execute(NEWEST_FORECAST_ORIGIN, params).fetchone()[0]
        articles = cur.execute(NEWEST_ARTICLE).fetchone()[0]
        observation = cur.execute(NEWEST_OBSERVATION).fetchone()[0]
    return {
        "bars": bars,
        "indicators": indicators,
        "forecasts": forecasts,
        "articles": articles,
        "observations": _midnight_utc(observation),
    }


def _midnight_utc(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tzinfo=UTC)
