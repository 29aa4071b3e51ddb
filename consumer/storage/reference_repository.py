"""The storage consumer's SQL for news, macro vintages, corporate actions and instruments."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from shared.loop.contract import Record
from shared.schemas import Article, CorporateAction, Instrument, MacroObservation

# Per-connection staging tables like staging_bars (emptied by every COMMIT).
CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_macro (
    series_id text, obs_date date, realtime_start date, value float8,
    kafka_partition int, kafka_offset bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS staging_articles (
    id text, published_at timestamptz, headline text, summary text, source text, url text,
    category text, sentiment float8, symbol text, kafka_partition int, kafka_offset bigint
) ON COMMIT DELETE ROWS
"""
COPY_MACRO = """
COPY staging_macro (series_id, obs_date, realtime_start, value, kafka_partition, kafka_offset)
FROM STDIN
"""
# A vintage is written only when its value differs from the vintage before it: the newest stored
# one (for the first staged vintage of a date) or the previous staged one (lag) otherwise.
# "No stored row" is `newest.found IS NULL`, never `newest IS NULL`: a row whose value is NULL
# (FRED's ".") makes the whole record test NULL too, and an unchanged "." re-published under a
# later realtime_start would become a new vintage.
INSERT_MACRO = """
WITH staged AS (
    SELECT DISTINCT ON (series_id, obs_date, realtime_start) *
    FROM staging_macro
    ORDER BY series_id, obs_date, realtime_start, kafka_partition, kafka_offset
), ordered AS (
    SELECT s.*,
           row_number() OVER w AS rn,
           lag(value) OVER w AS previous_value
    FROM staged s
    WINDOW w AS (PARTITION BY series_id, obs_date ORDER BY realtime_start)
)
INSERT INTO macro_observations (series_id, obs_date, realtime_start, value)
SELECT o.series_id, o.obs_date, o.realtime_start, o.value
FROM ordered o
LEFT JOIN LATERAL (
    SELECT true AS found, m.value FROM macro_observations m
    WHERE m.series_id = o.series_id AND m.obs_date = o.obs_date
      AND m.realtime_start <= o.realtime_start
    ORDER BY m.realtime_start DESC LIMIT 1
) newest ON true
WHERE CASE WHEN o.rn = 1 THEN newest.found IS NULL OR newest.value IS DISTINCT FROM o.value
           ELSE o.value IS DISTINCT FROM o.previous_value END
ON CONFLICT DO NOTHING
"""
UPSERT_SERIES = """
INSERT INTO macro_series (series_id, title, units, frequency, seasonal_adjustment, updated_at)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (series_id) DO UPDATE SET
    title = EXCLUDED.title, units = EXCLUDED.units, frequency = EXCLUDED.frequency,
    seasonal_adjustment = EXCLUDED.seasonal_adjustment, updated_at = EXCLUDED.updated_at
WHERE (macro_series.title, macro_series.units, macro_series.frequency,
       macro_series.seasonal_adjustment, macro_series.updated_at)
      IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.units, EXCLUDED.frequency,
                        EXCLUDED.seasonal_adjustment, EXCLUDED.updated_at)
"""
COPY_ARTICLES = """
COPY staging_articles (id, published_at, headline, summary, source, url, category, sentiment,
                       symbol, kafka_partition, kafka_offset) FROM STDIN
"""
# The first version of an article wins; every symbol it was published for is one link.
INSERT_ARTICLES = """
INSERT INTO news_articles (id, published_at, headline, summary, source, url, category, sentiment)
SELECT DISTINCT ON (id) id, published_at, headline, summary, source, url, category, sentiment
FROM staging_articles
ORDER BY id, kafka_partition, kafka_offset
ON CONFLICT (id) DO NOTHING
"""
INSERT_ARTICLE_SYMBOLS = """
INSERT INTO article_symbols (article_id, symbol)
SELECT DISTINCT id, symbol FROM staging_articles
ON CONFLICT DO NOTHING
"""
INSERT_ACTION = """
INSERT INTO corporate_actions (symbol, ts, kind, ratio, amount, source)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (symbol, ts, kind) DO NOTHING
"""
# One snapshot per symbol: the newest wins (a snapshot is today's metadata, not history).
UPSERT_INSTRUMENT = """
INSERT INTO instruments (symbol, name, exchange, currency, sector, industry, market_cap, pe_ratio,
                         dividend_yield, high_52w, low_52w, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (symbol) DO UPDATE SET
    name = EXCLUDED.name, exchange = EXCLUDED.exchange, currency = EXCLUDED.currency,
    sector = EXCLUDED.sector, industry = EXCLUDED.industry, market_cap = EXCLUDED.market_cap,
    pe_ratio = EXCLUDED.pe_ratio, dividend_yield = EXCLUDED.dividend_yield,
    high_52w = EXCLUDED.high_52w, low_52w = EXCLUDED.low_52w, updated_at = EXCLUDED.updated_at
WHERE instruments.updated_at <= EXCLUDED.updated_at
"""


def prepare_connection(conn: psycopg.Connection) -> None:
    """Pool `configure` hook: this module's staging tables."""
    conn.execute(CREATE_STAGING)


def write_macro(conn: psycopg.Connection, records: Sequence[Record]) -> int:
    """Stage the vintages, insert those that change a value, refresh series metadata."""
    series = {}
    with conn.cursor() as cur:
        with cur.copy(COPY_MACRO) as copy:
            for record in records:
                obs: MacroObservation = record.value
                copy.write_row(
                    (
                        obs.series_id,
                        obs.obs_date,
                        obs.realtime_start,
                        obs.value,
                        record.partition,
                        record.offset,
                    )
                )
                if obs.series is not None:
                    series[obs.series_id] = obs.series
        cur.execute(INSERT_MACRO)
        inserted = cur.rowcount
        cur.executemany(
            UPSERT_SERIES,
            [
                (sid, m.title, m.units, m.frequency, m.seasonal_adjustment, m.last_updated)
                for sid, m in sorted(series.items())
            ],
        )
    return inserted


def write_articles(conn: psycopg.Connection, records: Sequence[Record]) -> int:
    """Stage the articles; one row per article id, one link per (article, symbol)."""
    with conn.cursor() as cur:
        with cur.copy(COPY_ARTICLES) as copy:
            for record in records:
                a: Article = record.value
                copy.write_row(
                    (
                        a.id,
                        a.published_at,
                        a.headline,
                        a.summary,
                        a.publisher,
                        a.url,
                        a.category,
                        a.sentiment,
                        a.symbol,
                        record.partition,
                        record.offset,
                    )
                )
        cur.execute(INSERT_ARTICLES)
        inserted = cur.rowcount
        cur.execute(INSERT_ARTICLE_SYMBOLS)
    return inserted


def write_actions(conn: psycopg.Connection, records: Sequence[Record]) -> int:
    rows = []
    for record in records:
        action: CorporateAction = record.value
        row = (action.symbol, action.ts, action.kind, action.ratio, action.amount, action.source)
        rows.append(row)
    with conn.cursor() as cur:
        cur.executemany(INSERT_ACTION, rows)
    return len(rows)


def write_instruments(conn: psycopg.Connection, records: Sequence[Record]) -> int:
    newest: dict[str, Instrument] = {}
    for record in records:
        snapshot: Instrument = record.value
        if snapshot.symbol not in newest or newest[snapshot.symbol].as_of <= snapshot.as_of:
            newest[snapshot.symbol] = snapshot
    rows = [
        (
            s.symbol,
            s.name,
            s.exchange,
            s.currency,
            s.sector,
            s.industry,
            s.market_cap,
            s.pe_ratio,
            s.dividend_yield,
            s.high_52w,
            s.low_52w,
            s.as_of,
        )
        for s in newest.values()
    ]
    with conn.cursor() as cur:
        cur.executemany(UPSERT_INSTRUMENT, rows)
    return len(rows)
