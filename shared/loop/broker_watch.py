"""Whether the broker answers a consumer: health red while every broker is down.

librdkafka reports "all brokers down" through the client's error callback and keeps retrying
by itself; nothing reports the recovery, so while red the loop asks for metadata now and then
(`check`) and turns green when it gets an answer.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException

from shared.health import Health

logger = logging.getLogger(__name__)

HEALTH_KEY = "kafka"
RECHECK_S = 5.0
METADATA_TIMEOUT_S = 1.0


class BrokerWatch:
    """The consumer's `error_cb` and the recovery check the loop calls between polls."""

    def __init__(self, health: Health) -> None:
        self._health = health
        self.down = False
        self._next_check = 0.0

    def on_error(self, error: KafkaError) -> None:
        """librdkafka's error callback (runs inside poll): note an unreachable broker."""
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.down = True
            self._next_check = time.monotonic() + RECHECK_S
            self._health.red(HEALTH_KEY, f"Kafka unreachable: {error.str()}")
        else:
            logger.debug("kafka client error: %s", error.str())

    def check(self, consumer: Consumer) -> None:
        """While down, ask for metadata every RECHECK_S; an answer turns health green."""
        if not self.down or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + RECHECK_S
        try:
            consumer.list_topics(timeout=METADATA_TIMEOUT_S)
        except KafkaException:
            return
        self.down = False
        self._health.green(HEALTH_KEY)
