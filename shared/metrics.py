"""Prometheus metrics every service exposes on /metrics (one process, one registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "pipeline_messages", "Kafka messages handled (consumed or published)", ["topic", "direction"]
)
ROWS_WRITTEN = Counter("pipeline_rows_written", "Rows committed to PostgreSQL", ["table"])
DEAD_LETTERS = Counter("pipeline_dead_letters", "Messages rejected with a reason", ["topic"])
DROPPED = Counter("pipeline_dropped", "Expected API artefacts dropped at the producer", ["reason"])
UPSERT_CONFLICTS = Counter(
    "pipeline_upsert_conflicts",
    "Rows already present when written: a redelivery the offsets should have prevented",
    ["table"],
)
BARS_SKIPPED = Counter(
    "pipeline_bars_skipped",
    "Bars the analytics consumer did not feed to a series' state (duplicate or late)",
    ["reason"],
)
BAR_REVISIONS = Counter("pipeline_bar_revisions", "Later versions of a stored bar that differ")
FENCED_BATCHES = Counter(
    "pipeline_fenced_batches", "Batches dropped because another consumer owns the partition now"
)
BATCH_RETRIES = Counter(
    "pipeline_batch_failures",
    "Batch writes that failed, by what the loop did (retry, halve, data, refused, fenced)",
    ["action"],
)
REREAD_BATCHES = Counter(
    "pipeline_reread_batches",
    "Batches processed while the batch before them was being written, dropped because that "
    "write failed: read again from Kafka once it is retried",
)
REFUSED_POSITIONS = Counter(
    "pipeline_refused_positions",
    "Batches of a partition refused because they did not start at the stored offset",
)
FITS = Counter(
    "pipeline_forecast_fits",
    "Forecast origins fitted, by outcome (fitted, failed, timeout) and kind (search, refit)",
    ["outcome", "kind"],
)
PENDING_ORIGINS = Gauge(
    "pipeline_forecast_pending_origins",
    "Origins committed with their fit still running in the background (applied once done)",
)
HELD_BARS = Gauge(
    "pipeline_forecast_held_bars",
    "Bars held in their series' state while its pending origin's fit still runs (fed, scored and "
    "checked once it is done)",
)
FIT_SECONDS = Histogram(
    "pipeline_forecast_fit_round_seconds",
    "Wall time a batch waited for origin fits: one round run in parallel in the pool, or a "
    "pending origin's fit",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
FIT_DURATION = Histogram(
    "pipeline_forecast_fit_duration_seconds",
    "One origin's fit, timed in the worker that ran it, by outcome and kind (search, refit)",
    ["outcome", "kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
ALERT_COMMIT_LATENCY = Histogram(
    "pipeline_alert_commit_latency_seconds",
    "Kafka CreateTime of the bar that changed an alert's state to the COMMIT that stored it",
    ["writer"],
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HEALTHY = Gauge("pipeline_healthy", "1 when /healthz is green")
API_DISABLED = Gauge(
    "pipeline_api_disabled",
    "1 while an API is not called (no key in live mode, key refused)",
    ["api"],
)
COMMIT_LATENCY = Histogram(
    "pipeline_commit_latency_seconds",
    "Kafka message CreateTime to the return of the COMMIT that stored it",
    buckets=(
        0.002,
        0.004,
        0.006,
        0.008,
        0.01,
        0.0125,
        0.015,
        0.0175,
        0.02,
        0.025,
        0.03,
        0.035,
        0.04,
        0.045,
        0.05,
        0.06,
        0.075,
        0.1,
        0.15,
        0.2,
        0.3,
        0.5,
        0.75,
        1.0,
        2.0,
        5.0,
        10.0,
        30.0,
    ),
)

# -- The consumer loop (shared/loop/): every consumer group member --------------------------------
REJECTED = Counter(
    "pipeline_messages_rejected",
    "Messages dead-lettered by a consumer, by topic and reason class "
    "(schema, validation, value, database, handler)",
    ["topic", "reason"],
)
BATCH_MESSAGES = Histogram(
    "pipeline_batch_messages",
    "Messages (records and dead letters) per committed batch write",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
)
WRITE_SECONDS = Histogram(
    "pipeline_write_duration_seconds",
    "One batch write: process() and the transaction, to the return of its COMMIT",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PARTITIONS = Gauge(
    "pipeline_partitions",
    "Partitions this member owns, by state (consuming, paused, awaiting_offsets)",
    ["state"],
)
OWNED_LAG = Gauge(
    "pipeline_owned_partition_lag_messages",
    "Messages of a partition this member owns not yet committed: the high watermark of its "
    "last fetch minus its stored offset, refreshed every few seconds",
    ["topic", "partition"],
)
READY = Gauge(
    "pipeline_ready", "1 when /readyz is green (in its group, every owned partition consuming)"
)

# -- Producers: the external APIs --------------------------------------------------------------
API_REQUESTS = Counter(
    "pipeline_api_requests",
    "HTTP requests to the external APIs, by api (yahoo, finnhub, fred, other) and HTTP status "
    "('error' when no response came: timeout, connection refused)",
    ["api", "status"],
)

# -- The monitor service (pipeline.monitor): figures read from PostgreSQL and the broker ---------
CONSUMER_LAG = Gauge(
    "pipeline_consumer_lag_messages",
    "Broker high watermark minus the offset stored in consumer_offsets, per group and partition",
    ["group", "topic", "partition"],
)
DATA_AGE = Gauge(
    "pipeline_data_age_seconds", "Wall-clock age of the newest stored data of a domain", ["domain"]
)
DATA_STALE = Gauge(
    "pipeline_data_stale",
    "1 while a domain is past its freshness SLA (on the exchange's clock), else 0",
    ["domain"],
)
ALERT_EVENTS = Gauge(
    "pipeline_alert_events", "Rows in alert_events by rule and state", ["rule", "state"]
)
MONITOR_RUNS = Counter(
    "pipeline_monitor_runs", "Monitor rounds by outcome (ok, failed)", ["outcome"]
)
PARTITION_UPKEEP = Counter(
    "pipeline_partition_upkeep",
    "Partition upkeep calls by outcome (ok, failed, unavailable: db.partitions not installed)",
    ["outcome"],
)
