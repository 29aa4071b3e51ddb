"""The alert sinks without a network: the event document, Alertmanager's alert, retries."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from analytics.alerts.sinks import (
    RESENDS_AHEAD,
    SCHEMA,
    AlertmanagerSink,
    Backoff,
    DeliveryError,
    WebhookSink,
    alertmanager_alert,
    encode_event,
    event_document,
)
from analytics.alerts.store import AlertEvent

BAR = datetime(2024, 3, 1, tzinfo=UTC)
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
FIRING = AlertEvent(
    id=42,
    fingerprint="0" * 31 + "a",
    rule="rsi_overbought",
    rules_version="v3",
    severity="warning",
    symbol="AAPL",
    interval="1d",
    state="firing",
    value=72.3125,
    threshold=70.0,
    message="AAPL 1d RSI 72.31 > 70",
    bar_ts=BAR,
    prev_event_id=None,
    prev_bar_ts=None,
    historical=False,
    created_at=NOW,
)
RESOLVED = replace(
    FIRING, id=57, state="resolved", bar_ts=BAR + timedelta(days=3), prev_event_id=42,
    prev_bar_ts=BAR, value=None, threshold=None, message="AAPL 1d RSI back below 70",
)  # fmt: skip


class FakeSession:
    """Records each POST; answers with the next status (or raises the next exception)."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append((url, kwargs))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        response = requests.Response()
        response.status_code = answer
        return response


def test_the_document_carries_the_stable_id_and_utc_times() -> None:
    document = event_document(FIRING)
    assert document["schema"] == SCHEMA and document["event_id"] == 42
    assert document["bar_ts"] == "2024-03-01T00:00:00+00:00"
    assert document["state"] == "firing" and document["prev_event_id"] is None
    assert json.loads(encode_event(FIRING)) == document


def test_a_value_that_is_not_finite_is_null_not_invalid_json() -> None:
    document = json.loads(encode_event(replace(FIRING, value=float("nan"))))
    assert document["value"] is None and document["threshold"] == 70.0


def test_alertmanager_firing_starts_at_the_bar_and_ends_resends_ahead() -> None:
    alert = alertmanager_alert(FIRING, NOW, resend_s=60)
    assert alert["labels"] == {
        "alertname": "rsi_overbought",
        "symbol": "AAPL",
        "interval": "1d",
        "severity": "warning",
        "fingerprint": FIRING.fingerprint,
    }
    assert alert["annotations"]["summary"] == FIRING.message
    assert alert["annotations"]["value"] == "72.3125"
    assert alert["startsAt"] == "2024-03-01T00:00:00Z"
    ends = NOW + timedelta(seconds=RESENDS_AHEAD * 60)
    assert alert["endsAt"] == ends.isoformat().replace("+00:00", "Z")


def test_alertmanager_resolved_spans_the_firing_bar_to_the_resolving_bar() -> None:
    alert = alertmanager_alert(RESOLVED, NOW, resend_s=60)
    assert alert["startsAt"] == "2024-03-01T00:00:00Z"
    assert alert["endsAt"] == "2024-03-04T00:00:00Z"
    assert "value" not in alert["annotations"]
    # A resolving bar stamped after now still resolves now (an endsAt ahead would keep it
    # active), and never before its start (Alertmanager refuses that).
    early = alertmanager_alert(RESOLVED, BAR + timedelta(days=1), resend_s=60)
    assert early["endsAt"] == "2024-03-02T00:00:00Z"
    odd = alertmanager_alert(replace(RESOLVED, prev_bar_ts=NOW), NOW, resend_s=60)
    assert odd["endsAt"] == odd["startsAt"]


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(0.5, 4.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.delay(10_000) == 4.0


def test_webhook_posts_the_document_with_the_id_as_idempotency_key() -> None:
    session = FakeSession(200)
    WebhookSink("http://hooks.invalid/alerts?token=x", session, 5.0).send(FIRING)
    ((url, kwargs),) = session.calls
    assert url == "http://hooks.invalid/alerts?token=x" and kwargs["timeout"] == 5.0
    assert kwargs["headers"]["Idempotency-Key"] == "42"
    assert json.loads(kwargs["data"]) == event_document(FIRING)


@pytest.mark.parametrize(
    "answer", [500, 429, 404, requests.ConnectionError("refused"), requests.Timeout()]
)
def test_anything_but_2xx_is_a_failed_delivery(answer: int | Exception) -> None:
    with pytest.raises(DeliveryError):
        WebhookSink("http://hooks.invalid/", FakeSession(answer), 5.0).send(FIRING)


def test_alertmanager_posts_a_list_to_its_v2_api() -> None:
    session = FakeSession(200)
    sink = AlertmanagerSink("http://am.invalid:9093/", session, 5.0, resend_s=60)
    sink.send_many([FIRING, RESOLVED], now=NOW)
    ((url, kwargs),) = session.calls
    assert url == "http://am.invalid:9093/api/v2/alerts"
    assert kwargs["json"] == [
        alertmanager_alert(FIRING, NOW, 60),
        alertmanager_alert(RESOLVED, NOW, 60),
    ]
    sink.send_many([])
    assert len(session.calls) == 1  # nothing to post, no request
