-- Producer-owned state of the API producers, written only from Kafka delivery callbacks.

-- producer.macro's own record of what it published: per series and observation date, the newest
-- vintage whose delivery to macro.observations Kafka confirmed. The producer compares each FRED
-- observation with this row (FRED's "." is a NULL value, and NULL = NULL here: IS NOT DISTINCT
-- FROM), never with macro_observations, which the storage consumer writes: what it publishes
-- must not depend on how far storage lags. Written only from delivery callbacks
-- (producer/macro/vintages.py).
CREATE TABLE producer_vintages (
    producer        text             NOT NULL,
    series_id       text             NOT NULL,
    obs_date        date             NOT NULL,
    realtime_start  date             NOT NULL,
    value           double precision,
    event_id        text             NOT NULL,
    delivered_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (producer, series_id, obs_date)
);

-- producer.news's own record of the articles it delivered, per key (symbol or _general): a
-- re-asked overlap day skips these ids, whatever article_symbols (storage's table) holds yet.
-- Bounded: ids published 30 days before the key's window (its watermark minus the overlap) are
-- pruned by the producer.
CREATE TABLE producer_articles (
    producer      text        NOT NULL,
    key           text        NOT NULL,
    article_id    text        NOT NULL,
    published_at  timestamptz NOT NULL,
    delivered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (producer, key, article_id)
);
