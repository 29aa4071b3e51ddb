"""Wires the storage consumer: settings → Kafka consumer + Postgres pool → exactly-once loop."""

from __future__ import annotations

import threading

from consumer.storage.handler import StorageHandler
from consumer.storage.repository import prepare_connection
from shared.consumer_loop import ExactlyOnceLoop, LoopOptions
from shared.db import check_database, make_pool
from shared.health import Health
from shared.kafka import check_broker, make_consumer, topics_for
from shared.settings import Settings

SERVICE = "consumer.storage"


def run(settings: Settings, stop: threading.Event, health: Health) -> None:
    # Wrong addresses fail fast with one line; an outage *later* pauses instead (the loop).
    check_broker(settings.kafka)
    check_database(settings.postgres)
    handler = StorageHandler(topics_for(settings.kafka))
    consumer = make_consumer(
        settings.kafka,
        settings.consumer.group_storage,
        max_poll_interval_ms=settings.consumer.max_poll_interval_ms,
        session_timeout_ms=settings.consumer.session_timeout_ms,
    )
    with make_pool(settings.postgres, SERVICE, configure=prepare_connection) as pool:
        options = LoopOptions(
            group_id=settings.consumer.group_storage,
            service=SERVICE,
            batch_size=settings.consumer.batch_size,
            poll_timeout_s=settings.consumer.poll_timeout_s,
            db_retry_s=settings.consumer.db_retry_s,
            failpoint=settings.consumer.failpoint,
            stall_s=settings.consumer.failpoint_stall_s,
        )
        loop = ExactlyOnceLoop(consumer, pool, handler.subscriptions, handler, options, health)
        loop.run(stop)
