"""Where alert events go besides the table: the event document, the webhook, Alertmanager.

The same JSON document is the alerts.events message, the webhook's body and
`watch_alerts --json`'s line. A delivery either returns (the sink took it) or raises
DeliveryError; the relay retries with `Backoff` until it succeeds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import requests

from analytics.alerts.store import AlertEvent

SCHEMA = "alerts.event/1"
ALERTMANAGER_PATH = "/api/v2/alerts"
# Alertmanager resolves an alert it has not heard of by endsAt: the relay posts the firing ones
# again every ALERTMANAGER_RESEND_S, endsAt this many resends ahead (as Prometheus does).
RESENDS_AHEAD = 4


class DeliveryError(Exception):
    """A sink did not take an event (connection error, timeout, a status other than 2xx)."""


class Poster(Protocol):
    """What the sinks need of a requests.Session (tests pass a fake)."""

    def post(self, url: str, **kwargs: Any) -> requests.Response: ...


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def event_document(event: AlertEvent) -> dict[str, Any]:
    """The event as JSON-ready values; `event_id` is its alert_events id, stable across
    redeliveries."""
    return {
        "schema": SCHEMA,
        "event_id": event.id,
        "fingerprint": event.fingerprint,
        "rule": event.rule,
        "rules_version": event.rules_version,
        "severity": event.severity,
        "symbol": event.symbol,
        "interval": event.interval,
        "state": event.state,
        "value": _finite(event.value),
        "threshold": _finite(event.threshold),
        "message": event.message,
        "bar_ts": event.bar_ts.astimezone(UTC).isoformat(),
        "prev_event_id": event.prev_event_id,
        "historical": event.historical,
        "created_at": event.created_at.astimezone(UTC).isoformat(),
    }


def encode_event(event: AlertEvent) -> bytes:
    return json.dumps(event_document(event), separators=(",", ":"), allow_nan=False).encode()


def _rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alertmanager_alert(event: AlertEvent, now: datetime, resend_s: float) -> dict[str, Any]:
    """Alertmanager's v2 alert for `event`: labels name the machine, times come from bars.

    Firing: startsAt is the firing bar, endsAt a few resends ahead of now (refreshed while it
    fires). Resolved: startsAt is the firing bar (the previous event's), endsAt the resolving
    bar (not after now, never before startsAt), so Alertmanager shows it resolved at once.
    """
    labels = {
        "alertname": event.rule,
        "symbol": event.symbol,
        "interval": event.interval,
        "severity": event.severity,
        # Two machines of one rule and series (a ± threshold) are two alerts.
        "fingerprint": event.fingerprint,
    }
    annotations = {
        "summary": event.message,
        "event_id": str(event.id),
        "rules_version": event.rules_version,
    }
    for name, number in (("value", event.value), ("threshold", event.threshold)):
        if _finite(number) is not None:
            annotations[name] = f"{number:g}"
    if event.state == "firing":
        starts = event.bar_ts
        ends = max(now, event.bar_ts) + timedelta(seconds=RESENDS_AHEAD * resend_s)
    else:
        starts = event.prev_bar_ts or event.bar_ts
        ends = max(starts, min(event.bar_ts, now))
    return {
        "labels": labels,
        "annotations": annotations,
        "startsAt": _rfc3339(starts),
        "endsAt": _rfc3339(ends),
    }


@dataclass(frozen=True)
class Backoff:
    """Exponential retry delays: `initial_s`, doubling, capped at `max_s`."""

    initial_s: float
    max_s: float

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1 for the first failure)."""
        return min(self.max_s, self.initial_s * 2.0 ** min(max(attempt - 1, 0), 60))


def _post(session: Poster, url: str, timeout_s: float, **kwargs: Any) -> None:
    try:
        response = session.post(url, timeout=timeout_s, **kwargs)
    except requests.RequestException as exc:
        raise DeliveryError(type(exc).__name__) from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"HTTP {response.status_code}")


class WebhookSink:
    """POSTs each event's document; the event id is the Idempotency-Key, so a receiver can drop
    a redelivery (after a crash between the POST and the marker, or a lost response)."""

    name = "webhook"

    def __init__(self, url: str, session: Poster, timeout_s: float) -> None:
        self._url = url  # may hold a token: never logged
        self._session = session
        self._timeout_s = timeout_s

    def send(self, event: AlertEvent) -> None:
        _post(
            self._session,
            self._url,
            self._timeout_s,
            data=encode_event(event),
            headers={"Content-Type": "application/json", "Idempotency-Key": str(event.id)},
        )


class AlertmanagerSink:
    """Posts firing and resolved events to Alertmanager's /api/v2/alerts."""

    name = "alertmanager"

    def __init__(self, base_url: str, session: Poster, timeout_s: float, resend_s: float) -> None:
        self._url = base_url.rstrip("/") + ALERTMANAGER_PATH
        self._session = session
        self._timeout_s = timeout_s
        self.resend_s = resend_s

    def send(self, event: AlertEvent) -> None:
        self.send_many([event])

    def send_many(self, events: list[AlertEvent], now: datetime | None = None) -> None:
        """One POST for `events` (the relay's periodic re-post of what still fires)."""
        if not events:
            return
        moment = now or datetime.now(UTC)
        body = [alertmanager_alert(event, moment, self.resend_s) for event in events]
        _post(self._session, self._url, self._timeout_s, json=body)
