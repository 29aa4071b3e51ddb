"""start_pipeline.py's status line: each service's /metrics totals, message rate, red reasons and
health notes."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

SCRAPE_TIMEOUT_S = 1.0
REASONS_WIDTH = 60
# Sample names of the counters in shared/metrics.py (the client adds `_total`).
MESSAGES_SAMPLE = "pipeline_messages_total"
ROWS_SAMPLE = "pipeline_rows_written_total"


@dataclass(frozen=True)
class Totals:
    """One scrape of a service's /metrics, its counters summed over their labels."""

    at: float
    messages: float
    rows: float


def parse_totals(text: str, at: float) -> Totals:
    """Sum the message and row counters of a Prometheus text exposition (ValueError if garbled)."""
    messages = rows = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == MESSAGES_SAMPLE:
                messages += sample.value
            elif sample.name == ROWS_SAMPLE:
                rows += sample.value
    return Totals(at, messages, rows)


def message_rate(previous: Totals | None, current: Totals | None) -> float | None:
    """Messages per second between two scrapes; None until there are two."""
    if previous is None or current is None or current.at <= previous.at:
        return None
    delta = current.messages - previous.messages
    if delta < 0:  # the service restarted in between: its counters began again at 0
        delta = current.messages
    return delta / (current.at - previous.at)


@dataclass(frozen=True)
class ServiceView:
    """What the status line shows for one service; None where the scrape failed."""

    name: str
    state: str
    rate: float | None
    rows: float | None
    red_reasons: tuple[str, ...] = ()
    # Health notes of a green service, e.g. "disabled: no FINNHUB_API_KEY".
    notes: tuple[str, ...] = ()


def _clipped(texts: tuple[str, ...]) -> str:
    text = "; ".join(texts)
    return text if len(text) <= REASONS_WIDTH else text[: REASONS_WIDTH - 1] + "…"


def format_status(views: Sequence[ServiceView]) -> str:
    """`status | NAME STATE RATE msg/s ROWS rows [red: REASONS] [NOTES] | …`, `-` for unknowns."""
    parts = []
    for view in views:
        rate = "-" if view.rate is None else f"{view.rate:.1f}"
        rows = "-" if view.rows is None else f"{view.rows:.0f}"
        part = f"{view.name} {view.state} {rate} msg/s {rows} rows"
        if view.red_reasons:
            part += f" red: {_clipped(view.red_reasons)}"
        if view.notes:
            part += f" {_clipped(view.notes)}"
        parts.append(part)
    return "status | " + " | ".join(parts)


def _get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET; an error status is an answer too (a red /healthz is a 503)."""
    try:
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as reply:  # noqa: S310 (http)
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# A starting, stopping or stuck service is shown as `-`: a failed scrape never stops supervision.
_SCRAPE_ERRORS = (OSError, ValueError, KeyError, TypeError, http.client.HTTPException)


def scrape(base_url: str) -> tuple[Totals | None, tuple[str, ...], tuple[str, ...]]:
    """/metrics totals (None if unreadable), /healthz red reasons and notes; never raises."""
    totals: Totals | None = None
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    try:
        status, body = _get(f"{base_url}/metrics")
        if status == 200:
            totals = parse_totals(body.decode(), time.monotonic())
    except _SCRAPE_ERRORS:
        pass
    try:
        status, body = _get(f"{base_url}/healthz")
        if status in (200, 503):
            health = json.loads(body)
            if status == 503:
                reasons = tuple(str(reason) for reason in health["reasons"])
            notes = tuple(str(note) for note in health.get("notes", ()))
    except _SCRAPE_ERRORS:
        pass
    return totals, reasons, notes


def scrape_host(host: str) -> str:
    """Where to reach a service bound to HEALTH_HOST (a wildcard bind answers on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    return f"[{host}]" if ":" in host else host
