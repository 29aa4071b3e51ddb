"""producer.market's run loop and a one-shot poll, on the shared poll loop."""

from __future__ import annotations

import threading

from confluent_kafka import Producer
from psycopg_pool import ConnectionPool

from producer.market.parsing import SERVICE
from producer.market.poller import MarketPoller, PollReport
from producer.poll_loop import run_polling
from shared.db import make_pool
from shared.errors import SourceError
from shared.health import Health
from shared.kafka import make_producer
from shared.settings import Settings


def _clients(settings: Settings) -> tuple[Producer, ConnectionPool]:
    return make_producer(settings.kafka, SERVICE), make_pool(settings.postgres, SERVICE)


def poll_once(
    settings: Settings, *, stop: threading.Event | None = None, health: Health | None = None
) -> PollReport:
    """Backfill or poll every symbol once, flush, advance the watermarks, and report."""
    producer, pool = _clients(settings)
    try:
        poller = MarketPoller(
            settings,
            producer=producer,
            pool=pool,
            health=health or Health(SERVICE),
            stop=stop or threading.Event(),
        )
        return poller.poll()
    finally:
        pool.close()


def run(settings: Settings, stop: threading.Event, health: Health, *, once: bool = False) -> None:
    """Poll every MARKET_POLL_INTERVAL_S until `stop` is set (or once, with `once`)."""
    if once:
        report = poll_once(settings, stop=stop, health=health)
        if report.failed:
            raise SourceError(f"poll failed for {', '.join(sorted(report.failed))}")
        return
    producer, pool = _clients(settings)
    try:
        poller = MarketPoller(settings, producer=producer, pool=pool, health=health, stop=stop)
        run_polling(poller.poll, interval_s=settings.market.poll_interval_s, stop=stop)
    finally:
        pool.close()
