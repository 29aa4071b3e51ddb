"""A consumer whose broker does not answer turns /healthz red (librdkafka's own error report)."""

from __future__ import annotations

import socket
import time

from confluent_kafka import Consumer, KafkaError

from shared.health import Health
from shared.loop.broker_watch import HEALTH_KEY, BrokerWatch


def test_all_brokers_down_turns_red_and_only_that() -> None:
    health = Health("test.service")
    watch = BrokerWatch(health)
    watch.on_error(KafkaError(KafkaError._TRANSPORT))  # one connection dropped: not red
    assert health.snapshot() == (True, [])
    watch.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    ok, reasons = health.snapshot()
    assert not ok and reasons[0].startswith("Kafka unreachable")
    assert watch.down and HEALTH_KEY == "kafka"


def test_a_real_client_without_a_broker_reports_it() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    health = Health("test.service")
    watch = BrokerWatch(health)
    consumer = Consumer(
        {
            "bootstrap.servers": f"127.0.0.1:{port}",
            "group.id": "nobody",
            "error_cb": watch.on_error,
            "reconnect.backoff.max.ms": 100,
        }
    )
    try:
        deadline = time.monotonic() + 20
        while not watch.down and time.monotonic() < deadline:
            consumer.poll(0.2)
        assert watch.down
        assert health.snapshot()[0] is False
        watch._next_check = 0.0  # noqa: SLF001 (no waiting for the recheck period here)
        watch.check(consumer)  # still no broker: stays red
        assert health.snapshot()[0] is False
    finally:
        consumer.close()
