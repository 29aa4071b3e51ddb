-- Time-partitioned large tables: price_bars and indicators by interval (LIST), then by time
-- (RANGE on ts, one partition per calendar month in UTC); forecasts and forecast_errors by
-- origin_ts (RANGE, monthly). Retention then drops whole partitions (db/partitions.py), and a
-- 1-minute retention never touches daily bars. Every existing row is copied over.
--
-- Keys: every primary key already holds its partition key (symbol, interval, ts; symbol,
-- interval, origin_ts, step, model), so every ON CONFLICT target of the writers is unchanged.
--
-- Each range-partitioned parent has a DEFAULT partition as a safety net: a row whose month has no
-- partition yet (a backfill of older history, a clock far ahead) lands there instead of failing
-- its consumer's batch. Partition upkeep (db/partitions.py ensure_partitions, run by
-- `python -m db migrate` and the monitor service) creates the months ahead and moves rows out of
-- the defaults into their own month's partition, so the defaults stay empty in steady state.
--
-- Locks: db/migrate.py applies this file in one transaction. The four tables are renamed first
-- (ACCESS EXCLUSIVE until the COMMIT), so readers and writers of them wait for the whole
-- migration: the copy of every row and the index builds. Measured in the README ("Partitions
-- and retention"). A consumer whose write waits past POSTGRES_LOCK_TIMEOUT_MS pauses and redoes
-- its batch after the migration.

-- Partition bounds are written and read as UTC instants.
SET LOCAL TimeZone = 'UTC';

-- 1. The old tables step aside. Views follow a table by its identity, not its name, so they now
-- point at the renamed tables; step 5 points them at the new ones.
ALTER TABLE price_bars RENAME TO price_bars_unpartitioned;
ALTER INDEX price_bars_pkey RENAME TO price_bars_unpartitioned_pkey;
ALTER INDEX price_bars_daily_session_date RENAME TO price_bars_unpartitioned_daily_session_date;
ALTER TABLE indicators RENAME TO indicators_unpartitioned;
ALTER INDEX indicators_pkey RENAME TO indicators_unpartitioned_pkey;
ALTER TABLE forecasts RENAME TO forecasts_unpartitioned;
ALTER INDEX forecasts_pkey RENAME TO forecasts_unpartitioned_pkey;
ALTER TABLE forecast_errors RENAME TO forecast_errors_unpartitioned;
ALTER INDEX forecast_errors_pkey RENAME TO forecast_errors_unpartitioned_pkey;

-- 2. The partitioned parents, with the columns (same names, types, defaults and order) and
-- CHECKs of 0001, 0003 + 0004, 0005. Keys and indexes come after the copy (a bulk build).
CREATE TABLE price_bars (
    symbol       text             NOT NULL,
    interval     text             NOT NULL,
    ts           timestamptz      NOT NULL,
    open         double precision NOT NULL,
    high         double precision NOT NULL,
    low          double precision NOT NULL,
    close        double precision NOT NULL,
    adj_close    double precision,
    volume       bigint           NOT NULL,
    split_basis  double precision NOT NULL DEFAULT 1,
    source       text             NOT NULL,
    event_id     text             NOT NULL,
    ingested_at  timestamptz      NOT NULL DEFAULT now()
) PARTITION BY LIST (interval);

CREATE TABLE indicators (
    symbol       text             NOT NULL,
    interval     text             NOT NULL,
    ts           timestamptz      NOT NULL,
    sma_fast     double precision,
    sma_slow     double precision,
    ema_fast     double precision,
    ema_slow     double precision,
    rsi          double precision,
    macd         double precision,
    macd_signal  double precision,
    macd_hist    double precision,
    bb_lower     double precision,
    bb_middle    double precision,
    bb_upper     double precision,
    volatility   double precision,
    params_id    integer          NOT NULL,
    computed_at  timestamptz      NOT NULL DEFAULT now(),
    split_basis  double precision
) PARTITION BY LIST (interval);

CREATE TABLE forecasts (
    symbol       text             NOT NULL,
    interval     text             NOT NULL,
    origin_ts    timestamptz      NOT NULL,
    step         smallint         NOT NULL CHECK (step > 0),
    target_ts    timestamptz,
    model        text             NOT NULL,
    median       double precision NOT NULL,
    mean         double precision NOT NULL,
    lo80         double precision NOT NULL,
    hi80         double precision NOT NULL,
    lo95         double precision NOT NULL,
    hi95         double precision NOT NULL,
    arima_order  text,
    aicc         double precision,
    fitted_at    timestamptz      NOT NULL DEFAULT now(),
    CHECK (lo95 <= lo80 AND lo80 <= median AND median <= hi80 AND hi80 <= hi95)
) PARTITION BY RANGE (origin_ts);

CREATE TABLE forecast_errors (
    symbol        text             NOT NULL,
    interval      text             NOT NULL,
    origin_ts     timestamptz      NOT NULL,
    step          smallint         NOT NULL,
    model         text             NOT NULL,
    bar_ts        timestamptz      NOT NULL,
    actual        double precision NOT NULL,
    abs_error     double precision NOT NULL,
    scaled_error  double precision,
    inside80      boolean          NOT NULL,
    inside95      boolean          NOT NULL,
    evaluated_at  timestamptz      NOT NULL DEFAULT now()
) PARTITION BY RANGE (origin_ts);

-- 3. Partitions: per table and interval (shared/validation.py INTERVALS, plus any other interval
-- found in the data) a RANGE parent `<table>_<interval>` with its DEFAULT, and one partition per
-- month holding rows, `<parent>_pYYYYMMDD` (its first day). Found in one pass over each table.
DO $$
DECLARE
    tbl   text;
    key   text;
    iv    text;
    month timestamptz;
    made  text[];
    rng   text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['price_bars', 'indicators'] LOOP
        made := ARRAY[]::text[];
        FOR iv, month IN EXECUTE format(
            'SELECT i, m FROM (SELECT unnest(ARRAY[''1m'', ''2m'', ''5m'', ''15m'', ''30m'','
            ' ''60m'', ''90m'', ''1h'', ''1d'']), NULL::timestamptz'
            ' UNION SELECT DISTINCT interval, date_trunc(''month'', ts) FROM %I) AS f(i, m)'
            ' ORDER BY i, m NULLS FIRST', tbl || '_unpartitioned')
        LOOP
            rng := tbl || '_' || iv;
            IF NOT rng = ANY (made) THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES IN (%L)'
                               ' PARTITION BY RANGE (ts)', rng, tbl, iv);
                EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', rng || '_default', rng);
                made := made || rng;
            END IF;
            IF month IS NOT NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               rng || '_p' || to_char(month, 'YYYYMMDD'), rng, month,
                               month + interval '1 month');
            END IF;
        END LOOP;
    END LOOP;
    FOREACH tbl IN ARRAY ARRAY['forecasts', 'forecast_errors'] LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', tbl || '_default', tbl);
        FOR month IN EXECUTE format('SELECT DISTINCT date_trunc(''month'', origin_ts) FROM %I',
                                    tbl || '_unpartitioned')
        LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           tbl || '_p' || to_char(month, 'YYYYMMDD'), tbl, month,
                           month + interval '1 month');
        END LOOP;
    END LOOP;
END
$$;

-- 4. The rows, then keys and indexes built over them.
INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, adj_close, volume,
                        split_basis, source, event_id, ingested_at)
SELECT symbol, interval, ts, open, high, low, close, adj_close, volume, split_basis, source,
       event_id, ingested_at
FROM price_bars_unpartitioned;

INSERT INTO indicators (symbol, interval, ts, sma_fast, sma_slow, ema_fast, ema_slow, rsi, macd,
                        macd_signal, macd_hist, bb_lower, bb_middle, bb_upper, volatility,
                        params_id, computed_at, split_basis)
SELECT symbol, interval, ts, sma_fast, sma_slow, ema_fast, ema_slow, rsi, macd, macd_signal,
       macd_hist, bb_lower, bb_middle, bb_upper, volatility, params_id, computed_at, split_basis
FROM indicators_unpartitioned;

INSERT INTO forecasts (symbol, interval, origin_ts, step, target_ts, model, median, mean, lo80,
                       hi80, lo95, hi95, arima_order, aicc, fitted_at)
SELECT symbol, interval, origin_ts, step, target_ts, model, median, mean, lo80, hi80, lo95, hi95,
       arima_order, aicc, fitted_at
FROM forecasts_unpartitioned;

INSERT INTO forecast_errors (symbol, interval, origin_ts, step, model, bar_ts, actual, abs_error,
                             scaled_error, inside80, inside95, evaluated_at)
SELECT symbol, interval, origin_ts, step, model, bar_ts, actual, abs_error, scaled_error,
       inside80, inside95, evaluated_at
FROM forecast_errors_unpartitioned;

ALTER TABLE price_bars ADD CONSTRAINT price_bars_pkey PRIMARY KEY (symbol, interval, ts);
ALTER TABLE indicators ADD CONSTRAINT indicators_pkey PRIMARY KEY (symbol, interval, ts);
ALTER TABLE indicators ADD CONSTRAINT indicators_params_id_fkey
    FOREIGN KEY (params_id) REFERENCES indicator_params (params_id);
ALTER TABLE forecasts ADD CONSTRAINT forecasts_pkey
    PRIMARY KEY (symbol, interval, origin_ts, step, model);
ALTER TABLE forecast_errors ADD CONSTRAINT forecast_errors_pkey
    PRIMARY KEY (symbol, interval, origin_ts, step, model);

-- daily_bars' "every symbol on one date" index, now on the daily partitions only (every row of
-- price_bars_1d is a daily bar, so no predicate is needed; months attached later get it too).
CREATE INDEX price_bars_daily_session_date ON price_bars_1d (((ts AT TIME ZONE 'UTC')::date));

-- 5. Every view over the old tables, redefined over the new ones: its own definition as
-- PostgreSQL keeps it, with the old table's name replaced (whole words only). Same columns, so
-- CREATE OR REPLACE keeps every view that depends on these views and every grant.
DO $$
DECLARE
    view_oid oid;
    body     text;
BEGIN
    FOR view_oid IN
        SELECT DISTINCT r.ev_class
        FROM pg_depend d
        JOIN pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_rewrite'::regclass
          AND d.refobjid IN ('price_bars_unpartitioned'::regclass,
                             'indicators_unpartitioned'::regclass,
                             'forecasts_unpartitioned'::regclass,
                             'forecast_errors_unpartitioned'::regclass)
          AND r.ev_class NOT IN ('price_bars_unpartitioned'::regclass,
                                 'indicators_unpartitioned'::regclass,
                                 'forecasts_unpartitioned'::regclass,
                                 'forecast_errors_unpartitioned'::regclass)
    LOOP
        body := regexp_replace(pg_get_viewdef(view_oid),
                               '\m(price_bars|indicators|forecasts|forecast_errors)_unpartitioned\M',
                               '\1', 'g');
        EXECUTE format('CREATE OR REPLACE VIEW %s AS %s', view_oid::regclass, body);
    END LOOP;
END
$$;

DROP TABLE price_bars_unpartitioned, indicators_unpartitioned, forecasts_unpartitioned,
    forecast_errors_unpartitioned;

-- 6. latest_bars. Its 0004 loose index scan steps from series to series along the primary key;
-- on a partitioned table every step (and every newest-row probe) visits each month's partition
-- of the interval, so it would slow down with every month kept. Instead each series and its
-- newest bar time are kept in price_bar_series, maintained by statement-level triggers from the
-- rows each statement inserted or deleted (one small upsert per batch, not per row), and
-- latest_bars reads one primary-key probe per series, pruned to the month of its newest bar.
-- Retention (db/partitions.py) removes the series whose every bar it dropped. Keys are never
-- updated (the writers insert; a new version of a bar is a bar_revisions row).
CREATE TABLE price_bar_series (
    symbol     text        NOT NULL,
    interval   text        NOT NULL,
    newest_ts  timestamptz NOT NULL,
    PRIMARY KEY (symbol, interval)
);
INSERT INTO price_bar_series (symbol, interval, newest_ts)
SELECT symbol, interval, max(ts) FROM price_bars GROUP BY symbol, interval;

CREATE FUNCTION price_bar_series_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO price_bar_series AS s (symbol, interval, newest_ts)
    SELECT symbol, interval, max(ts) FROM inserted GROUP BY symbol, interval
    ON CONFLICT (symbol, interval) DO UPDATE SET newest_ts = EXCLUDED.newest_ts
    WHERE s.newest_ts < EXCLUDED.newest_ts;
    RETURN NULL;
END
$$;
CREATE TRIGGER price_bar_series_inserted AFTER INSERT ON price_bars
REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION price_bar_series_inserted();

-- A hand-made DELETE (retention drops partitions and fires no trigger): the series it touched
-- get their newest remaining bar, or leave the table.
CREATE FUNCTION price_bar_series_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH touched AS (
        SELECT DISTINCT symbol, interval FROM deleted
    ), newest AS (
        SELECT t.symbol, t.interval,
               (SELECT max(p.ts) FROM price_bars p
                WHERE p.symbol = t.symbol AND p.interval = t.interval) AS newest_ts
        FROM touched t
    ), gone AS (
        DELETE FROM price_bar_series s USING newest n
        WHERE (s.symbol, s.interval) = (n.symbol, n.interval) AND n.newest_ts IS NULL
    )
    UPDATE price_bar_series s SET newest_ts = n.newest_ts
    FROM newest n
    WHERE (s.symbol, s.interval) = (n.symbol, n.interval) AND n.newest_ts IS NOT NULL
      AND s.newest_ts <> n.newest_ts;
    RETURN NULL;
END
$$;
CREATE TRIGGER price_bar_series_deleted AFTER DELETE ON price_bars
REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION price_bar_series_deleted();

-- Same columns and order as the 0004 view. LATERAL with LIMIT: a probe per series (a plain
-- join would let the planner hash every bar); the ts parameter prunes it to one partition at
-- run time.
CREATE OR REPLACE VIEW latest_bars AS
SELECT s.symbol, s.interval, b.ts, b.open, b.high, b.low, b.close, b.adj_close, b.volume,
       b.split_basis, b.source, b.ingested_at
FROM price_bar_series s
CROSS JOIN LATERAL (
    SELECT p.ts, p.open, p.high, p.low, p.close, p.adj_close, p.volume, p.split_basis, p.source,
           p.ingested_at
    FROM price_bars p
    WHERE p.symbol = s.symbol AND p.interval = s.interval AND p.ts = s.newest_ts
    LIMIT 1  -- at most one row by the key; keeps the subquery a per-series probe
) b
ORDER BY s.symbol, s.interval;

-- 7. Dead letters and late bars are not partitioned (their keys hold no time); their retention
-- deletes old rows in small batches by the time they arrived.
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
CREATE INDEX late_bars_received_at ON late_bars (received_at);

-- Fresh partitions have no statistics until autovacuum reaches them; the planner needs them now.
ANALYZE price_bars, indicators, forecasts, forecast_errors;
