"""The monitor's figures as Prometheus gauges on its /metrics (names in docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Gauge

from pipeline.figures import Figure
from shared.metrics import ALERT_EVENTS, CONSUMER_LAG, DATA_AGE, DATA_STALE

# Per-service readings: exported only by the monitor, labelled by the service they describe.
SERVICE_UP = Gauge("pipeline_service_up", "1 when the service answered its /metrics", ["service"])
SERVICE_HEALTHY = Gauge(
    "pipeline_service_healthy", "1 when the service's /healthz was green", ["service"]
)

_BY_NAME: dict[str, Gauge] = {
    "pipeline_consumer_lag_messages": CONSUMER_LAG,
    "pipeline_data_age_seconds": DATA_AGE,
    "pipeline_data_stale": DATA_STALE,
    "pipeline_alert_events": ALERT_EVENTS,
    "pipeline_service_up": SERVICE_UP,
    "pipeline_service_healthy": SERVICE_HEALTHY,
}


def publish(figures: Sequence[Figure]) -> None:
    """Set the gauges to this round's figures; series not in this round are removed (a
    partition or rule that is gone must not keep its last value)."""
    for gauge in {id(g): g for g in _BY_NAME.values()}.values():
        gauge.clear()
    for figure in figures:
        gauge = _BY_NAME.get(figure.name)
        if gauge is not None:
            gauge.labels(**figure.labels).set(figure.value)
