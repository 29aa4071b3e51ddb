"""The Kafka publisher producers share: a context manager that flushes on exit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

from confluent_kafka import KafkaError, Message, Producer

from shared.metrics import MESSAGES

logger = logging.getLogger(__name__)

DeliveryCallback = Callable[[KafkaError | None, Message], None]


class KafkaPublisher:
    """Publishes to Kafka; leaving the `with` block flushes, so every delivery report has run."""

    def __init__(self, producer: Producer, flush_timeout_s: float = 30.0) -> None:
        self._producer = producer
        self._flush_timeout_s = flush_timeout_s

    def __enter__(self) -> KafkaPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.flush()

    def publish(
        self, topic: str, key: bytes, value: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                MESSAGES.labels(topic, "out").inc()
            else:
                logger.error("delivery to %s failed: %s", topic, error)
            if on_delivery is not None:
                on_delivery(error, message)

        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:
                # The local queue is full: serving delivery reports makes room.
                self._producer.poll(0.5)
        self._producer.poll(0)

    def flush(self) -> int:
        """Wait for every delivery report; returns how many messages are still undelivered."""
        remaining = self._producer.flush(self._flush_timeout_s)
        if remaining:
            logger.error(
                "%d messages still undelivered after %gs", remaining, self._flush_timeout_s
            )
        return remaining
