"""producer.macro's run loop on the producers' polling framework, and a one-shot poll."""

from __future__ import annotations

import threading

from psycopg_pool import ConnectionPool

from producer.fred_client import build_fred
from producer.macro.parsing import SERVICE
from producer.macro.plan import MacroPlan
from producer.macro.vintages import VintageRecord
from producer.polling import retry_policy, run_plan
from shared.health import Health
from shared.settings import Settings


def macro_plan(
    settings: Settings, pool: ConnectionPool, health: Health, stop: threading.Event
) -> MacroPlan:
    """The process's plan: one FRED client (one rate limit), its record of vintages."""
    client, gate = build_fred(settings, stop, health)
    vintages = VintageRecord(pool, SERVICE)
    return MacroPlan(
        settings.macro,
        client=client,
        gate=gate,
        vintages=vintages,
        retry=retry_policy(settings, stop),
    )


def run(settings: Settings, stop: threading.Event, health: Health, *, once: bool = False) -> int:
    """Poll every MACRO_POLL_INTERVAL_S until `stop` (or once); returns vintages published once."""
    interval_s = settings.macro.poll_interval_s
    report = run_plan(settings, SERVICE, macro_plan, health, stop, interval_s=interval_s, once=once)
    return report.published if report else 0
