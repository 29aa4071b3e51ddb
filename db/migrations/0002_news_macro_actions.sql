-- News, macro observations and corporate actions (issue 4); instruments already exist (0001).

CREATE TABLE news_articles (
    id            text PRIMARY KEY,  -- Finnhub's id, or a hash of the url where there is none
    published_at  timestamptz      NOT NULL,
    headline      text             NOT NULL,
    summary       text,
    source        text,
    url           text,
    category      text,
    sentiment     double precision CHECK (sentiment BETWEEN -1 AND 1),
    ingested_at   timestamptz      NOT NULL DEFAULT now()
);

-- The same article published for two symbols is one news_articles row and two links.
CREATE TABLE article_symbols (
    article_id  text NOT NULL REFERENCES news_articles (id),
    symbol      text NOT NULL,
    PRIMARY KEY (article_id, symbol)
);
CREATE INDEX article_symbols_symbol ON article_symbols (symbol);

CREATE TABLE macro_series (
    series_id            text PRIMARY KEY,
    title                text,
    units                text,
    frequency            text,
    seasonal_adjustment  text,
    updated_at           timestamptz
);

-- One row per vintage; a new vintage only when the value differs from the newest stored one.
CREATE TABLE macro_observations (
    series_id       text             NOT NULL,
    obs_date        date             NOT NULL,
    realtime_start  date             NOT NULL,
    value           double precision,  -- NULL for FRED's "."
    ingested_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (series_id, obs_date, realtime_start)
);

CREATE TABLE corporate_actions (
    symbol   text             NOT NULL,
    ts       timestamptz      NOT NULL,
    kind     text             NOT NULL CHECK (kind IN ('split', 'dividend')),
    ratio    double precision,  -- split: new shares per old share (4.0 for 4:1)
    amount   double precision,  -- dividend per share
    source   text             NOT NULL,
    PRIMARY KEY (symbol, ts, kind)
);

-- Every bar on the newest basis: price * split_basis is basis-free, so dividing by the product of
-- every split up to now rescales only rows fetched before a later split (factor 1 otherwise).
-- A plain float product: exp(sum(ln(ratio))) would turn a 4:1 split into 3.9999999999999996,
-- which no bar's split_basis equals.
CREATE AGGREGATE split_product (double precision) (
    SFUNC = float8mul,
    STYPE = double precision,
    INITCOND = '1'
);

CREATE VIEW price_bars_adjusted AS
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
       coalesce(b.newest_basis, p.split_basis) AS split_basis
FROM price_bars p
LEFT JOIN basis b USING (symbol)
CROSS JOIN LATERAL (
    SELECT CASE WHEN b.newest_basis IS NULL OR b.newest_basis = p.split_basis THEN 1.0::float8
                ELSE p.split_basis / b.newest_basis END AS factor
) f;

CREATE VIEW latest_macro AS
SELECT DISTINCT ON (o.series_id)
       o.series_id, s.title, s.units, o.obs_date, o.realtime_start, o.value
FROM macro_observations o
LEFT JOIN macro_series s USING (series_id)
ORDER BY o.series_id, o.obs_date DESC, o.realtime_start DESC;

CREATE VIEW news_by_symbol AS
SELECT a.symbol, n.id AS article_id, n.published_at, n.headline, n.summary, n.source, n.url,
       n.category, n.sentiment
FROM article_symbols a
JOIN news_articles n ON n.id = a.article_id;
