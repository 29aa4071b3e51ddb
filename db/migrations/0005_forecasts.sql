-- Forecasts (analytics.forecaster): every scheduled origin's outcome, each model's H steps, and
-- the live score of every step whose bar arrived. Keys hold origin_ts, so the tables can later be
-- range-partitioned by it.

-- Exactly one outcome per scheduled origin. `scale` is the MASE denominator of the origin's
-- window (its mean absolute one-step change, in prices); `warnings` the fit's distinct warnings.
CREATE TABLE forecast_origins (
    symbol       text             NOT NULL,
    interval     text             NOT NULL,
    origin_ts    timestamptz      NOT NULL,
    outcome      text             NOT NULL CHECK (outcome IN ('fitted', 'failed', 'timeout')),
    message      text,
    arima_order  text,
    searched     boolean          NOT NULL,
    warnings     text,
    window_bars  integer          NOT NULL,
    scale        double precision,
    fitted_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, interval, origin_ts)
);

-- Step k is the k-th bar of the series after the origin; `target_ts` is that bar's expected
-- time on the exchange calendar (informational when a bar is missing). Prices are on the split
-- basis of the origin's bar. model: 'arima', 'naive' or 'drift'.
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
    PRIMARY KEY (symbol, interval, origin_ts, step, model),
    CHECK (lo95 <= lo80 AND lo80 <= median AND median <= hi80 AND hi80 <= hi95)
);

-- One row per forecast step whose bar arrived: `actual` is that bar's close brought to the
-- forecast's split basis; scaled_error = abs_error / the origin's scale (MASE's term).
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
    evaluated_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, interval, origin_ts, step, model)
);

-- Results of `python -m ml.backtest` runs: one row per run, model and step.
CREATE TABLE forecast_evaluations (
    run_id        text             NOT NULL,
    model         text             NOT NULL,
    step          smallint         NOT NULL,
    series        integer          NOT NULL,
    origins       integer          NOT NULL,
    mase          double precision,
    smape         double precision,
    coverage80    double precision,
    coverage95    double precision,
    coverage95_ci_low   double precision,
    coverage95_ci_high  double precision,
    settings      jsonb            NOT NULL,
    created_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, model, step)
);

-- Wilson score interval of a proportion (z = 1.959963984540054: 95%, as ml.metrics.wilson).
CREATE FUNCTION wilson_low(successes bigint, trials bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN trials = 0 THEN 0 ELSE greatest(0,
        (successes::float8 / trials + 1.959963984540054 ^ 2 / (2 * trials)
         - 1.959963984540054 * sqrt(successes::float8 / trials * (1 - successes::float8 / trials) / trials
                       + 1.959963984540054 ^ 2 / (4 * trials ^ 2)))
        / (1 + 1.959963984540054 ^ 2 / trials)) END
$$;
CREATE FUNCTION wilson_high(successes bigint, trials bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN trials = 0 THEN 1 ELSE least(1,
        (successes::float8 / trials + 1.959963984540054 ^ 2 / (2 * trials)
         + 1.959963984540054 * sqrt(successes::float8 / trials * (1 - successes::float8 / trials) / trials
                       + 1.959963984540054 ^ 2 / (4 * trials ^ 2)))
        / (1 + 1.959963984540054 ^ 2 / trials)) END
$$;

-- Live quality per (symbol, interval, model, step) over the newest 100 scored origins: MASE
-- (mean scaled error) beside the naive and drift baselines' on the same origins, and the
-- empirical coverage of the 80% and 95% intervals with a Wilson 95% interval.
CREATE VIEW forecast_quality AS
WITH recent AS (
    SELECT e.*, row_number() OVER (
        PARTITION BY symbol, interval, model, step ORDER BY origin_ts DESC) AS age
    FROM forecast_errors e
), windowed AS (
    SELECT * FROM recent WHERE age <= 100
), per_model AS (
    SELECT symbol, interval, model, step, count(*) AS scored,
           avg(scaled_error) AS mase,
           count(*) FILTER (WHERE inside80) AS in80,
           count(*) FILTER (WHERE inside95) AS in95
    FROM windowed
    GROUP BY symbol, interval, model, step
)
SELECT m.symbol, m.interval, m.model, m.step, m.scored, m.mase,
       n.mase AS mase_naive, d.mase AS mase_drift,
       m.in80::float8 / m.scored AS coverage80,
       wilson_low(m.in80, m.scored) AS coverage80_ci_low,
       wilson_high(m.in80, m.scored) AS coverage80_ci_high,
       m.in95::float8 / m.scored AS coverage95,
       wilson_low(m.in95, m.scored) AS coverage95_ci_low,
       wilson_high(m.in95, m.scored) AS coverage95_ci_high
FROM per_model m
LEFT JOIN per_model n ON n.model = 'naive'
    AND (n.symbol, n.interval, n.step) = (m.symbol, m.interval, m.step)
LEFT JOIN per_model d ON d.model = 'drift'
    AND (d.symbol, d.interval, d.step) = (m.symbol, m.interval, m.step);

-- The newest forecast of each series with its intervals.
CREATE VIEW latest_forecasts AS
SELECT f.*
FROM forecasts f
JOIN (
    SELECT symbol, interval, max(origin_ts) AS origin_ts FROM forecast_origins
    GROUP BY symbol, interval
) newest USING (symbol, interval, origin_ts);
