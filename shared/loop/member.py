"""`run_consumer`: one group member of a service — its Kafka consumer, its pool, the loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import psycopg
from confluent_kafka import Consumer

from shared.db import make_pool
from shared.health import Health
from shared.kafka import consumer_config
from shared.loop.broker_watch import BrokerWatch
from shared.loop.contract import Handler, LoopOptions
from shared.loop.runner import ConsumerLoop
from shared.settings import Settings


def run_consumer(
    settings: Settings,
    stop: threading.Event,
    health: Health,
    *,
    service: str,
    group_id: str,
    topics: Sequence[str],
    handler: Handler,
    configure: Callable[[psycopg.Connection], None],
) -> None:
    """One group member of `service` on `topics` until `stop`."""
    consumer_settings = settings.consumer
    max_poll_interval_ms = consumer_settings.max_poll_interval_ms
    session = settings.postgres.session_timeouts(max_poll_interval_ms)
    watch = BrokerWatch(health)  # /healthz red while the broker does not answer
    config = consumer_config(
        settings.kafka,
        group_id,
        max_poll_interval_ms=max_poll_interval_ms,
        session_timeout_ms=consumer_settings.session_timeout_ms,
    )
    consumer = Consumer({**config, "error_cb": watch.on_error})
    with make_pool(settings.postgres, service, configure=configure, session=session) as pool:
        options = LoopOptions(
            group_id=group_id,
            service=service,
            batch_size=consumer_settings.batch_size,
            poll_timeout_s=consumer_settings.poll_timeout_s,
            db_retry_s=consumer_settings.db_retry_s,
            pool_wait_s=consumer_settings.pool_wait_s,
            broker_timeout_s=settings.kafka.connect_timeout_s,
            retry_max_s=consumer_settings.retry_max_s,
            refused_retry_s=consumer_settings.refused_retry_s,
            poison_max_share=consumer_settings.poison_max_share,
            poison_max_in_row=consumer_settings.poison_max_in_row,
        )
        ConsumerLoop(consumer, pool, topics, handler, options, health, watch).run(stop)
