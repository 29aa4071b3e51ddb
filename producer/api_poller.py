"""What the API producers (news, macro) share: their I/O context and their run loop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from psycopg_pool import ConnectionPool

from producer.api_errors import ApiGate
from producer.poll_loop import run_polling
from producer.publisher import KafkaPublisher
from shared.db import make_pool
from shared.health import Health
from shared.kafka import Topics, make_producer, topics_for
from shared.settings import Settings


@dataclass(frozen=True)
class PollContext:
    """Where a poller publishes, keeps its watermarks, reports health, and learns to stop."""

    gate: ApiGate
    publisher: KafkaPublisher
    topics: Topics
    pool: ConnectionPool
    health: Health
    stop: threading.Event
    # The one retry around each API request (API_RETRY_ATTEMPTS, API_RETRY_BACKOFF_S).
    retry_attempts: int = 5
    retry_backoff_s: float = 1.0


class Poller(Protocol):
    def poll(self) -> int: ...


def run_api_poller(
    settings: Settings,
    service: str,
    context_parts: tuple[ApiGate, Health, threading.Event],
    make_poller: Callable[[PollContext], Poller],
    *,
    interval_s: float,
    once: bool,
) -> int:
    """Poll every `interval_s` until stopped (or once: returns what that poll published)."""
    gate, health, stop = context_parts
    pool = make_pool(settings.postgres, service)
    try:
        with KafkaPublisher(make_producer(settings.kafka, service), stop=stop) as publisher:
            poller = make_poller(
                PollContext(
                    gate,
                    publisher,
                    topics_for(settings.kafka),
                    pool,
                    health,
                    stop,
                    retry_attempts=settings.api.api_retry_attempts,
                    retry_backoff_s=settings.api.api_retry_backoff_s,
                )
            )
            if once:
                return poller.poll()
            run_polling(poller.poll, interval_s=interval_s, stop=stop)
            return 0
    finally:
        pool.close()
