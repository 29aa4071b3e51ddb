"""producer.macro's run loop on the shared poll loop, and a one-shot poll for tests."""

from __future__ import annotations

import threading

from producer.api_errors import ApiGate
from producer.api_poller import run_api_poller
from producer.data_source import build_session
from producer.fred_client import FredClient
from producer.macro.parsing import SERVICE
from producer.macro.poller import MacroPoller
from producer.poll_loop import RateLimiter
from shared.health import Health
from shared.settings import DataSource, Settings


def run(settings: Settings, stop: threading.Event, health: Health, *, once: bool = False) -> int:
    """Poll every MACRO_POLL_INTERVAL_S until `stop` (or once); returns vintages published once."""
    key = settings.api.fred_api_key
    gate = ApiGate(
        "FRED",
        health,
        key_setting="FRED_API_KEY",
        key_present=key is not None,
        live=settings.source.data_source is DataSource.LIVE,
    )
    # One FRED limiter for the whole process.
    limiter = RateLimiter(settings.api.fred_requests_per_minute)
    client = FredClient(
        build_session(settings.source, browser=False),
        key.get_secret_value() if key else None,
        limiter=limiter,
        stop=stop,
        timeout_s=settings.source.http_timeout_s,
    )
    return run_api_poller(
        settings,
        SERVICE,
        (gate, health, stop),
        lambda context: MacroPoller(settings.macro, client=client, context=context),
        interval_s=settings.macro.poll_interval_s,
        once=once,
    )
