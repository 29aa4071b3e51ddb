"""The monitor's figures as plain values: consumer lag, freshness and each service's totals.

Pure: the monitor reads offsets, watermarks and scrapes (pipeline/lag.py, pipeline/monitor/)
and turns them into `Figure`s here; the same figures become Prometheus gauges and rows of
`pipeline_metrics` (names in docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.freshness import Freshness

# (group, topic, partition) -> next offset stored in consumer_offsets.
StoredOffsets = Mapping[tuple[str, str, int], int]
# (topic, partition) -> (log start, high watermark) on the broker.
Watermarks = Mapping[tuple[str, int], tuple[int, int]]


@dataclass(frozen=True)
class Figure:
    """One reading: a metric name, its labels and its value."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    value: float = 0.0


def consumer_lag(stored: StoredOffsets, watermarks: Watermarks) -> list[Figure]:
    """Lag per group and partition: high watermark − stored offset.

    Every partition of a topic a group has stored offsets for is covered: one without a stored
    offset yet lags by everything still in the log (high − log start). Partitions the broker
    did not report (a topic deleted) are left out, not guessed.
    """
    groups_topics = sorted({(group, topic) for group, topic, _ in stored})
    figures = []
    for group, topic in groups_topics:
        for (t, partition), (low, high) in sorted(watermarks.items()):
            if t != topic:
                continue
            at = stored.get((group, topic, partition))
            lag = high - (low if at is None else max(at, low))
            figures.append(
                Figure(
                    "pipeline_consumer_lag_messages",
                    {"group": group, "topic": topic, "partition": str(partition)},
                    float(max(0, lag)),
                )
            )
    return figures


def freshness(verdicts: Sequence[Freshness]) -> list[Figure]:
    """Age (where there is data) and stale flag per domain."""
    figures = []
    for verdict in verdicts:
        labels = {"domain": verdict.domain}
        if verdict.age_s is not None:
            figures.append(Figure("pipeline_data_age_seconds", labels, verdict.age_s))
        figures.append(Figure("pipeline_data_stale", labels, 1.0 if verdict.stale else 0.0))
    return figures


def alert_events(counts: Mapping[tuple[str, str], int]) -> list[Figure]:
    """Stored alert events by (rule, state)."""
    return [
        Figure("pipeline_alert_events", {"rule": rule, "state": state}, float(count))
        for (rule, state), count in sorted(counts.items())
    ]


@dataclass(frozen=True)
class ServiceReading:
    """What one scrape of a service said; None where it did not answer."""

    service: str
    up: bool
    healthy: bool | None = None
    messages: float | None = None
    rows: float | None = None


def services(readings: Sequence[ServiceReading]) -> list[Figure]:
    """Per service: up (answered its /metrics), healthy, and its message and row totals."""
    figures = []
    for reading in readings:
        labels = {"service": reading.service}
        figures.append(Figure("pipeline_service_up", labels, 1.0 if reading.up else 0.0))
        if reading.healthy is not None:
            figures.append(
                Figure("pipeline_service_healthy", labels, 1.0 if reading.healthy else 0.0)
            )
        if reading.messages is not None:
            figures.append(Figure("pipeline_messages", labels, reading.messages))
        if reading.rows is not None:
            figures.append(Figure("pipeline_rows_written", labels, reading.rows))
    return figures
