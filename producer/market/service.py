"""producer.market's run loop and a one-shot poll, on the producers' polling framework."""

from __future__ import annotations

import threading

from confluent_kafka import Producer
from psycopg_pool import ConnectionPool

from producer.market.clients import build_clients
from producer.market.parsing import SERVICE
from producer.market.plan import MarketPlan, MarketReport
from producer.polling import PollLoop, poll_plan_once, run_plan
from producer.publisher import KafkaPublisher
from producer.store import OwnState, ProducerStore
from shared.errors import SourceError
from shared.health import Health
from shared.kafka import topics_for
from shared.settings import Settings


def market_plan(
    settings: Settings,
    pool: ConnectionPool,
    health: Health,
    stop: threading.Event,
    *,
    backfill_days: int | None = None,
) -> MarketPlan:
    """The process's plan: its clients (one Yahoo rate limit), its own state in `pool`."""
    return MarketPlan(
        settings.market,
        build_clients(settings, health, stop),
        OwnState(ProducerStore(pool, SERVICE)),
        backfill_days=backfill_days,
    )


def market_loop(
    settings: Settings,
    *,
    producer: Producer,
    pool: ConnectionPool,
    health: Health,
    stop: threading.Event,
    backfill_days: int | None = None,
) -> PollLoop[MarketReport]:
    """A loop on a given Kafka producer and pool (the backfill command's, a test's)."""
    return PollLoop(
        market_plan(settings, pool, health, stop, backfill_days=backfill_days),
        service=SERVICE,
        publisher=KafkaPublisher(producer, stop=stop),
        topics=topics_for(settings.kafka),
        pool=pool,
        health=health,
        stop=stop,
    )


def poll_once(
    settings: Settings, *, stop: threading.Event | None = None, health: Health | None = None
) -> MarketReport:
    """Backfill or poll every symbol once, flush, advance the watermarks, and report."""
    health = health or Health(SERVICE)
    return poll_plan_once(settings, SERVICE, market_plan, health, stop or threading.Event())


def run(settings: Settings, stop: threading.Event, health: Health, *, once: bool = False) -> None:
    """Poll every MARKET_POLL_INTERVAL_S until `stop` is set (or once, with `once`)."""
    interval_s = settings.market.poll_interval_s
    report = run_plan(
        settings, SERVICE, market_plan, health, stop, interval_s=interval_s, once=once
    )
    if report is not None and report.failed:
        raise SourceError(f"poll failed for {', '.join(sorted(report.failed))}")
