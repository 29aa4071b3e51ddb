"""The Kafka publisher producers share: a context manager that flushes on exit."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from confluent_kafka import KafkaError, Message, Producer

from shared.errors import PipelineError
from shared.metrics import MESSAGES

logger = logging.getLogger(__name__)

DeliveryCallback = Callable[[KafkaError | None, Message], None]

# How long one wait for room in a full local queue lasts before `stop` is looked at again.
BUFFER_WAIT_S = 0.2


class PublishStoppedError(PipelineError):
    """`stop` was set while the local queue was full: the message was not queued.

    Raised rather than returned so that no caller goes on (and advances a watermark past a
    message that was never sent); its delivery callback never runs.
    """


class KafkaPublisher:
    """Publishes to Kafka; leaving the `with` block flushes, so every delivery report has run."""

    def __init__(
        self,
        producer: Producer,
        flush_timeout_s: float = 30.0,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        """`stop`: ends the wait for room in a full local queue (PublishStoppedError)."""
        self._producer = producer
        self._flush_timeout_s = flush_timeout_s
        self._stop = stop

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
        """Queue one message; while the local queue is full, serve delivery reports until there
        is room, or raise PublishStoppedError once `stop` is set (a broker that is down for good
        would otherwise hold the process in this loop forever)."""

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
                if self._stop is not None and self._stop.is_set():
                    raise PublishStoppedError(
                        f"stopping while the local queue is full: a message to {topic} was not "
                        "queued"
                    ) from None
                # The local queue is full: serving delivery reports makes room.
                self._producer.poll(BUFFER_WAIT_S)
        self._producer.poll(0)

    def serve_reports(self, timeout_s: float = 0.0) -> int:
        """Run the delivery callbacks already due (reports of earlier polls' messages, e.g.
        those that timed out after a flush gave up waiting); returns how many ran."""
        return self._producer.poll(timeout_s)

    def flush(self) -> int:
        """Wait for every delivery report; returns how many messages are still undelivered.

        Those stay queued: their reports run on a later `publish`, `serve_reports` or `flush`,
        so whoever tracks them must outlive this call.
        """
        remaining = self._producer.flush(self._flush_timeout_s)
        if remaining:
            logger.error(
                "%d messages still undelivered after %gs", remaining, self._flush_timeout_s
            )
        return remaining
