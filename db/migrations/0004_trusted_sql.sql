-- SQL a person can trust: session dates whatever the client's TimeZone, indexes for the obvious
-- queries, macro vintages, split-adjusted indicators, readable dead letters. Views, functions and
-- indexes only: no table is rewritten.
--
-- Locks: db/migrate.py applies this file in one transaction, so the indexes are built by a plain
-- CREATE INDEX (CONCURRENTLY cannot run in a transaction). Each holds a SHARE lock on its table
-- until the migration commits: reads go on, writes wait. The price_bars index reads the whole
-- table once (it keeps only the daily rows): on the test cluster, with a million bars in cache,
-- the whole migration took 0.23 s; count seconds per million rows on a cold disk. A consumer
-- whose write waits past POSTGRES_LOCK_TIMEOUT_MS pauses and redoes its batch (README).

-- Daily bars are keyed by their session date at 00:00 UTC, so the session date is the UTC date of
-- `ts`. `ts::date` converts to the session's TimeZone first: a day early anywhere west of UTC.
CREATE VIEW daily_bars AS
SELECT symbol, (ts AT TIME ZONE 'UTC')::date AS session_date, ts, open, high, low, close,
       adj_close, volume, split_basis, source, ingested_at
FROM price_bars
WHERE interval = '1d';

-- Every symbol on one date: daily_bars WHERE session_date = … Partial: intraday bars, most of the
-- writes, do not maintain it.
CREATE INDEX price_bars_daily_session_date ON price_bars (((ts AT TIME ZONE 'UTC')::date))
    WHERE interval = '1d';

CREATE INDEX news_articles_published_at ON news_articles (published_at);

-- The newest bar per series in one primary-key probe per series instead of a scan and sort of
-- every bar: the recursive part steps from one (symbol, interval) to the next along the primary
-- key (a loose index scan, which PostgreSQL does not plan by itself), then each series' newest row
-- is read backwards from its end of the key. Same columns and order as the 0001 view.
CREATE OR REPLACE VIEW latest_bars AS
WITH RECURSIVE series (symbol, interval) AS (
    (SELECT symbol, interval FROM price_bars ORDER BY symbol, interval LIMIT 1)
    UNION ALL
    SELECT later.symbol, later.interval
    FROM series s
    CROSS JOIN LATERAL (
        SELECT p.symbol, p.interval
        FROM price_bars p
        WHERE (p.symbol, p.interval) > (s.symbol, s.interval)
        ORDER BY p.symbol, p.interval
        LIMIT 1
    ) later
)
SELECT s.symbol, s.interval, b.ts, b.open, b.high, b.low, b.close, b.adj_close, b.volume,
       b.split_basis, b.source, b.ingested_at
FROM series s
CROSS JOIN LATERAL (
    SELECT p.ts, p.open, p.high, p.low, p.close, p.adj_close, p.volume, p.split_basis, p.source,
           p.ingested_at
    FROM price_bars p
    WHERE p.symbol = s.symbol AND p.interval = s.interval
    ORDER BY p.ts DESC
    LIMIT 1
) b
ORDER BY s.symbol, s.interval;

-- The current vintage of every observation: per series and date, the value of the newest
-- realtime_start (NULL where that vintage is FRED's "."). The series people chart.
CREATE VIEW macro_current AS
SELECT DISTINCT ON (series_id, obs_date) series_id, obs_date, value, realtime_start
FROM macro_observations
ORDER BY series_id, obs_date, realtime_start DESC;

-- The newest observation whose current value is not "." (FRED lists a date before it has a
-- value for it). Same columns as the 0002 view.
CREATE OR REPLACE VIEW latest_macro AS
SELECT DISTINCT ON (c.series_id)
       c.series_id, s.title, s.units, c.obs_date, c.realtime_start, c.value
FROM macro_current c
LEFT JOIN macro_series s USING (series_id)
WHERE c.value IS NOT NULL
ORDER BY c.series_id, c.obs_date DESC;

-- A series as it was known on `as_of`: for each date, the vintage in force that day (the newest
-- realtime_start on or before it; value NULL where it was "."). Dates first stored after `as_of`
-- are absent.
CREATE FUNCTION macro_as_of(series_id text, as_of date)
RETURNS TABLE (obs_date date, value double precision, realtime_start date)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT DISTINCT ON (o.obs_date) o.obs_date, o.value, o.realtime_start
    FROM macro_observations o
    WHERE o.series_id = macro_as_of.series_id AND o.realtime_start <= macro_as_of.as_of
    ORDER BY o.obs_date, o.realtime_start DESC
$$;

-- The 0002 view unchanged, plus `price_factor`: what its prices are the stored prices times
-- (volume divided by), so views on top rescale other price columns exactly like the bar's.
CREATE OR REPLACE VIEW price_bars_adjusted AS
WITH basis AS (
    SELECT symbol, split_product(ratio ORDER BY ts) AS newest_basis
    FROM corporate_actions
    WHERE kind = 'split' AND ratio > 0
    GROUP BY symbol
)
-- A row already on the newest basis passes through unchanged (factor exactly 1), so indicators
-- recomputed over this view equal the live ones bit for bit where no split intervened.
SELECT p.symbol, p.interval, p.ts,
       p.open * f.factor AS open,
       p.high * f.factor AS high,
       p.low * f.factor AS low,
       p.close * f.factor AS close,
       p.adj_close * f.factor AS adj_close,
       CASE WHEN f.factor = 1 THEN p.volume
            ELSE round(p.volume / f.factor)::bigint END AS volume,
       coalesce(b.newest_basis, p.split_basis) AS split_basis,
       f.factor AS price_factor
FROM price_bars p
LEFT JOIN basis b USING (symbol)
CROSS JOIN LATERAL (
    SELECT CASE WHEN b.newest_basis IS NULL OR b.newest_basis = p.split_basis THEN 1.0::float8
                ELSE p.split_basis / b.newest_basis END AS factor
) f;

-- The split basis an indicators row is expressed in. The analytics consumer computes a row in the
-- prices of the bar it fed (the bar's basis); analytics.recompute computes over
-- price_bars_adjusted, so its rows are on the newest basis of its run. NULL: a row written before
-- this column existed, by the consumer, so on its bar's basis. Adding a nullable column without a
-- default rewrites nothing.
ALTER TABLE indicators ADD COLUMN split_basis double precision;

-- bars_with_indicators on the newest split basis: price-valued indicator columns are brought
-- from the row's own basis to the newest one; RSI and volatility are scale-free.
CREATE VIEW bars_with_indicators_adjusted AS
SELECT a.symbol, a.interval, a.ts, a.open, a.high, a.low, a.close, a.adj_close, a.volume,
       a.split_basis,
       i.sma_fast * f.factor AS sma_fast,
       i.sma_slow * f.factor AS sma_slow,
       i.ema_fast * f.factor AS ema_fast,
       i.ema_slow * f.factor AS ema_slow,
       i.rsi,
       i.macd * f.factor AS macd,
       i.macd_signal * f.factor AS macd_signal,
       i.macd_hist * f.factor AS macd_hist,
       i.bb_lower * f.factor AS bb_lower,
       i.bb_middle * f.factor AS bb_middle,
       i.bb_upper * f.factor AS bb_upper,
       i.volatility, i.params_id
FROM price_bars_adjusted a
LEFT JOIN indicators i USING (symbol, interval, ts)
CROSS JOIN LATERAL (
    SELECT CASE WHEN i.split_basis IS NULL THEN a.price_factor
                WHEN i.split_basis = a.split_basis THEN 1.0::float8
                ELSE i.split_basis / a.split_basis END AS factor
) f;

-- A payload's text, or NULL where it is not valid UTF-8 (NUL included: text cannot hold it).
-- STABLE like convert_from. PARALLEL UNSAFE: the exception handler is a subtransaction, which no
-- process of a parallel query may start, not even the leader ("cannot start subtransactions
-- during a parallel operation"; RESTRICTED is not enough), so such a query must not go parallel.
CREATE FUNCTION utf8_or_null(bytes bytea) RETURNS text
LANGUAGE plpgsql STABLE STRICT PARALLEL UNSAFE
AS $$
BEGIN
    RETURN convert_from(bytes, 'UTF8');
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
    RETURN NULL;
END
$$;

-- dead_letters with key and payload as text; `payload` keeps the bytes of one that is not UTF-8.
CREATE VIEW dead_letters_readable AS
SELECT id, service, topic, kafka_partition, kafka_offset, reason, received_at,
       utf8_or_null(key) AS key_text, utf8_or_null(payload) AS payload_text, payload
FROM dead_letters;
