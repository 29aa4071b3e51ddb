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
REFUSED_POSITIONS = Counter(
    "pipeline_refused_positions",
    "Batches of a partition refused because they did not start at the stored offset",
)
FITS = Counter(
    "pipeline_forecast_fits",
    "Forecast origins fitted, by outcome (fitted, failed, timeout) and kind (search, refit)",
    ["outcome", "kind"],
)
FIT_SECONDS = Histogram(
    "pipeline_forecast_fit_round_seconds",
    "Wall time of one round of a batch's origin fits (run in parallel in the pool)",
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
