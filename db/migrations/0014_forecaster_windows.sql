-- A forecaster series' window of log closes (FORECAST_WINDOW values, ~4.5 kB at 500) changes by
-- one value a bar: rewritten with the rest of its state in every batch, it was most of the bytes
-- the forecaster wrote. The window is stored here every 64 bars (and at a split); the state row
-- (analytics_state, state version 2) holds the closes fed since and the bar count `bars` of the
-- window it continues, which loading checks. Both are written in the batch's one transaction.
CREATE TABLE forecaster_windows (
    consumer_group text NOT NULL,
    symbol         text NOT NULL,
    interval       text NOT NULL,
    bars           bigint NOT NULL,
    packed_window  bytea NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, symbol, interval)
);
-- Rewritten in place every 64 bars: room on the page keeps those updates HOT.
ALTER TABLE forecaster_windows SET (toast_tuple_target = 8160, fillfactor = 50);
