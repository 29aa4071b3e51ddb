-- Batch predictions of the next-bar direction model (python -m ml.predict; the model itself is a
-- joblib file, python -m ml.train).

-- One row per model version that wrote predictions: its metadata as the model file holds it
-- (features, training window, symbols, interval, hyperparameters, validation folds, metrics).
CREATE TABLE prediction_models (
    model_version  text        PRIMARY KEY,
    interval       text        NOT NULL,
    metadata       jsonb       NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT now()
);

-- `ts` is the bar at whose close the prediction is made (its features use bars up to and
-- including it); the prediction is for the series' next bar: P(its close > this bar's close).
-- Idempotent: the writer inserts with ON CONFLICT DO NOTHING, so a rerun adds nothing.
CREATE TABLE predictions (
    model_version   text             NOT NULL REFERENCES prediction_models (model_version),
    symbol          text             NOT NULL,
    interval        text             NOT NULL,
    ts              timestamptz      NOT NULL,
    probability_up  double precision NOT NULL CHECK (probability_up BETWEEN 0 AND 1),
    predicted_up    boolean          NOT NULL,
    predicted_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (model_version, symbol, interval, ts)
);
