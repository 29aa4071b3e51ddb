"""producer.news's run loop on the shared poll loop, and a one-shot poll for tests."""

from __future__ import annotations

import threading

from producer.api_poller import run_api_poller
from producer.finnhub_api import build_finnhub
from producer.news.parsing import SERVICE
from producer.news.poller import NewsPoller
from shared.health import Health
from shared.settings import Settings


def run(settings: Settings, stop: threading.Event, health: Health, *, once: bool = False) -> int:
    """Poll every NEWS_POLL_INTERVAL_S until `stop` (or once); returns articles published once."""
    api, gate = build_finnhub(settings, stop, health)
    return run_api_poller(
        settings,
        SERVICE,
        (gate, health, stop),
        lambda context: NewsPoller(settings.news, api=api, context=context),
        interval_s=settings.news.poll_interval_s,
        once=once,
    )
