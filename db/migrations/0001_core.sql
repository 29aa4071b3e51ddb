-- Core tables of the walking skeleton: bars, instruments, dead letters, offsets, producer state.
-- Prices are double precision: Yahoo delivers binary floats (float32 artefacts such as
-- 225.6999969482422) and a double keeps them bit for bit.

CREATE TABLE instruments (
    symbol          text PRIMARY KEY,
    name            text,
    exchange        text,
    currency        text,
    sector          text,
    industry        text,
    market_cap      double precision,
    pe_ratio        double precision,
    dividend_yield  double precision,
    high_52w        double precision,
    low_52w         double precision,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per closed bar: intraday bars keyed by their open time, daily bars by their session
-- date at 00:00 UTC. The first closed version wins; later differing versions go to bar_revisions.
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
    -- Cumulative split factor the prices are expressed in when fetched (price * split_basis is
    -- basis-free; volume / split_basis likewise).
    split_basis  double precision NOT NULL DEFAULT 1,
    source       text             NOT NULL,
    event_id     text             NOT NULL,
    ingested_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, interval, ts)
);

CREATE TABLE bar_revisions (
    id           bigserial PRIMARY KEY,
    symbol       text             NOT NULL,
    interval     text             NOT NULL,
    ts           timestamptz      NOT NULL,
    open         double precision NOT NULL,
    high         double precision NOT NULL,
    low          double precision NOT NULL,
    close        double precision NOT NULL,
    adj_close    double precision,
    volume       bigint           NOT NULL,
    split_basis  double precision NOT NULL,
    source       text             NOT NULL,
    event_id     text             NOT NULL,
    received_at  timestamptz      NOT NULL DEFAULT now(),
    -- The same revised version delivered twice is one revision.
    UNIQUE NULLS NOT DISTINCT (symbol, interval, ts, open, high, low, close, adj_close, volume,
                               split_basis)
);

CREATE TABLE dead_letters (
    id               bigserial PRIMARY KEY,
    service          text        NOT NULL,
    topic            text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    kafka_offset     bigint      NOT NULL,
    key              bytea,
    payload          bytea,
    reason           text        NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (service, topic, kafka_partition, kafka_offset)
);

-- Bars older than the newest one a consumer has seen for their series: counted and kept.
CREATE TABLE late_bars (
    consumer_group  text        NOT NULL,
    symbol          text        NOT NULL,
    interval        text        NOT NULL,
    ts              timestamptz NOT NULL,
    newest_ts       timestamptz NOT NULL,
    event_id        text        NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);

-- Offsets live here, written in the same transaction as the rows they correspond to.
-- `owner` is claimed by the member Kafka assigned the partition to; a batch commits only while
-- its consumer is still the owner and the offset is still the one the batch started from.
CREATE TABLE consumer_offsets (
    consumer_group   text        NOT NULL,
    topic            text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    next_offset      bigint,     -- NULL: claimed, nothing stored yet (start at the beginning)
    owner            text        NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);

CREATE TABLE producer_state (
    producer       text        NOT NULL,
    key            text        NOT NULL,
    watermark      timestamptz NOT NULL,
    last_event_id  text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (producer, key)
);

CREATE VIEW latest_bars AS
SELECT DISTINCT ON (symbol, interval)
       symbol, interval, ts, open, high, low, close, adj_close, volume, split_basis, source,
       ingested_at
FROM price_bars
ORDER BY symbol, interval, ts DESC;
