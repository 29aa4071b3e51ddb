"""Wires the storage consumer: settings → Kafka consumer + Postgres pool → exactly-once loop."""

from __future__ import annotations

import threading

from consumer.storage.handler import StorageHandler
from consumer.storage.repository import prepare_connection
from shared import services
from shared.db import check_database
from shared.health import Health
from shared.kafka import check_broker, topics_for
from shared.loop import run_consumer
from shared.settings import Settings

SERVICE = services.CONSUMER_STORAGE.name


def run(settings: Settings, stop: threading.Event, health: Health) -> None:
    # Wrong addresses fail fast with one line; an outage *later* pauses instead (the loop).
    check_broker(settings.kafka)
    check_database(settings.postgres)
    handler = StorageHandler(topics_for(settings.kafka))
    run_consumer(
        settings,
        stop,
        health,
        service=SERVICE,
        group_id=settings.consumer.group_storage,
        topics=handler.subscriptions,
        handler=handler,
        configure=prepare_connection,
    )
