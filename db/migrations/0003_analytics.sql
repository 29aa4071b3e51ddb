-- Streaming indicators (issue 5): their parameters, one row per bar, and the consumer's exact state.

-- Changing a period is a new params_id, never an ALTER at run time.
CREATE TABLE indicator_params (
    params_id   serial PRIMARY KEY,
    params      jsonb       NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per bar the analytics consumer fed to a series' state; a column is NULL during the
-- warm-up of its indicator. Prices are on the split basis of the bar that produced the row.
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
    params_id    integer          NOT NULL REFERENCES indicator_params (params_id),
    computed_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, interval, ts)
);

-- The exact incremental state of each series, written in the transaction of the indicators rows
-- and offsets it corresponds to. `kafka_partition` says which partition's owner restores it;
-- `revision` is bumped by `python -m analytics.recompute`, and the consumer only overwrites the
-- revision it loaded (a compare-and-set), so a recompute never interleaves with the live state.
CREATE TABLE analytics_state (
    consumer_group   text        NOT NULL,
    symbol           text        NOT NULL,
    interval         text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    -- json, not jsonb: json keeps the text as written, so every float reads back bit for bit.
    state            json        NOT NULL,
    last_ts          timestamptz NOT NULL,
    revision         bigint      NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, symbol, interval)
);
CREATE INDEX analytics_state_partition ON analytics_state (consumer_group, kafka_partition);

CREATE VIEW bars_with_indicators AS
SELECT b.symbol, b.interval, b.ts, b.open, b.high, b.low, b.close, b.adj_close, b.volume,
       b.split_basis, i.sma_fast, i.sma_slow, i.ema_fast, i.ema_slow, i.rsi, i.macd,
       i.macd_signal, i.macd_hist, i.bb_lower, i.bb_middle, i.bb_upper, i.volatility,
       i.params_id
FROM price_bars b
LEFT JOIN indicators i USING (symbol, interval, ts);
