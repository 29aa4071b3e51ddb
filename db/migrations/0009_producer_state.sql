-- Producer-owned state beside producer_state: what producer.market confirmed it delivered, so that
-- what it publishes never depends on the tables the storage consumer writes (corporate_actions,
-- price_bars) or on how far storage lags. Both tables are written only from Kafka delivery
-- callbacks (producer/store.py).

-- Every split and dividend whose delivery to market.actions was confirmed. A split Yahoo lists
-- that is not here is published (again) on the next poll: a failed delivery is re-sent. The
-- splits are also part of the split basis of later fetches (Yahoo's split list only grows).
CREATE TABLE producer_actions (
    producer      text             NOT NULL,
    symbol        text             NOT NULL,
    kind          text             NOT NULL CHECK (kind IN ('split', 'dividend')),
    ts            timestamptz      NOT NULL,
    ratio         double precision CHECK (ratio > 0),
    amount        double precision,
    event_id      text             NOT NULL,
    delivered_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (producer, symbol, kind, ts),
    CHECK ((kind = 'split') = (ratio IS NOT NULL))
);

-- The oldest bar of each series whose delivery was confirmed: a backfill publishes only what is
-- older (producer_state keeps the newest).
CREATE TABLE producer_history (
    producer    text        NOT NULL,
    key         text        NOT NULL,
    first_ts    timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (producer, key)
);
