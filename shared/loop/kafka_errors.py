"""Errors librdkafka hands over in place of a message: which are expected, which are alarms.

A partition assigned without an offset (Postgres did not answer, see partition.py) reports a
reset: expected. Every other assignment carries its stored offset, so a reset or an offset out
of range means records were deleted by retention before they were stored: health red, never a
silent reset (auto.offset.reset = error).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import KafkaError, Message

from shared.health import Health
from shared.loop.contract import PartitionKey

logger = logging.getLogger(__name__)

# librdkafka's text for a reset of a partition assigned without an offset: "no previously
# committed offset available: Local: No offset stored".
NO_OFFSET_STORED = "No offset stored"


def on_message_error(
    message: Message, is_awaiting: Callable[[PartitionKey], bool], health: Health
) -> None:
    error = message.error()
    if error.code() == KafkaError._PARTITION_EOF:
        return
    key = (message.topic(), message.partition())
    if error.code() == KafkaError._AUTO_OFFSET_RESET and (
        is_awaiting(key) or NO_OFFSET_STORED in error.str()
    ):
        # Expected, even when read after the partition was assigned again at its offset: only
        # an assignment without an offset can have "no offset stored".
        return
    if error.code() in (KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET):
        health.red("retention", f"retention gap: {error.str()}")
    logger.error("kafka error: %s", error.str())
