-- The monitor service's figures (pipeline.monitor), one row per figure per round (once a minute):
-- consumer lag per partition, data freshness per domain, each service's health and totals.
-- The same names as the Prometheus metrics (docs/metrics.md); `labels` holds their labels.
CREATE TABLE pipeline_metrics (
    recorded_at  timestamptz      NOT NULL,
    name         text             NOT NULL,
    labels       jsonb            NOT NULL DEFAULT '{}'::jsonb,
    value        double precision NOT NULL,
    PRIMARY KEY (recorded_at, name, labels)
);
-- "This figure over time": the question people and the dashboard ask.
CREATE INDEX pipeline_metrics_name_time ON pipeline_metrics (name, recorded_at DESC);

-- The newest round's figures.
CREATE VIEW latest_pipeline_metrics AS
SELECT recorded_at, name, labels, value
FROM pipeline_metrics
WHERE recorded_at = (SELECT max(recorded_at) FROM pipeline_metrics);
