"""The side panels: each service's /healthz (read over HTTP) and the chosen series' freshness."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from pipeline.freshness import DomainSla, Freshness, Mode, assess
from shared.calendar import ExchangeCalendar
from shared.health import health_port
from shared.services import Service
from shared.settings import FreshnessSettings, HealthSettings

HEALTH_TIMEOUT_S = 1.0
# The domains of a series the dashboard judges (news and macro are not a series' own).
SERIES_DOMAINS = ("bars", "indicators", "forecasts")


@dataclass(frozen=True)
class ServiceHealth:
    """What one service's /healthz said: `ok`, `red` (with its reasons) or `down` (no answer)."""

    name: str
    status: str
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def health_url(template: str, service: Service, settings: HealthSettings) -> str:
    return template.format(
        name=service.name.replace(".", "-"), port=health_port(settings, service.name)
    )


def interpret(name: str, body: bytes | None, error: str | None = None) -> ServiceHealth:
    """Pure: a /healthz answer (200 or 503 alike carry the JSON) → ServiceHealth."""
    if body is None:
        return ServiceHealth(name, "down", (error or "no answer",))
    try:
        document = json.loads(body)
        status = "ok" if document["status"] == "ok" else "red"
        return ServiceHealth(
            name,
            status,
            tuple(str(r) for r in document.get("reasons", [])),
            tuple(str(n) for n in document.get("notes", [])),
        )
    except (ValueError, KeyError, TypeError):
        return ServiceHealth(name, "down", ("not a /healthz answer",))


def _ask(name: str, url: str) -> ServiceHealth:
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as reply:  # noqa: S310 (http URL from settings, checked)
            return interpret(name, reply.read())
    except urllib.error.HTTPError as exc:  # 503: red, the body says why
        return interpret(name, exc.read())
    except (urllib.error.URLError, OSError) as exc:
        return interpret(name, None, str(getattr(exc, "reason", exc)))


def services_health(
    services: Sequence[Service], template: str, settings: HealthSettings
) -> list[ServiceHealth]:
    """Every service's health, asked in parallel (one slow service costs HEALTH_TIMEOUT_S once)."""
    urls = [(s.name, health_url(template, s, settings)) for s in services]
    with ThreadPoolExecutor(max_workers=max(1, len(urls))) as pool:
        return list(pool.map(lambda pair: _ask(*pair), urls))


def series_slas(
    interval: str, freshness: FreshnessSettings, forecast_every: int
) -> list[DomainSla]:
    """How a series of `interval` is judged: daily ones on session closes, intraday ones in
    market time; daily forecasts may skip FORECAST_EVERY - 1 sessions between origins."""
    daily = interval == "1d"
    mode = Mode.SESSIONS if daily else Mode.MARKET_TIME
    return [
        DomainSla("bars", freshness.bars_sla_s, mode, daily=daily),
        DomainSla("indicators", freshness.indicators_sla_s, mode, daily=daily),
        DomainSla(
            "forecasts",
            freshness.forecasts_sla_s,
            mode,
            daily=daily,
            allowed_sessions=forecast_every if daily else 1,
        ),
    ]


def series_freshness(
    newest: dict[str, datetime | None],
    slas: Sequence[DomainSla],
    calendar: ExchangeCalendar,
    now: datetime,
) -> list[Freshness]:
    """Pure: pipeline/freshness.py's verdict on each of the series' domains."""
    return assess(newest, slas, calendar, now)
