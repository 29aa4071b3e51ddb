"""KafkaPublisher: a stop ends the wait for room in a full local queue."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Producer

from producer.publisher import KafkaPublisher, PublishStoppedError
from shared.kafka import producer_config
from shared.settings import KafkaSettings
from tests.integration.tcp_gate import gate_to


def test_a_stop_ends_the_buffer_full_retry_loop(kafka_settings: KafkaSettings) -> None:
    # A real producer whose broker is unreachable (a closed gate) and whose local queue holds
    # one message: the second publish finds the queue full, and it stays full.
    with gate_to(kafka_settings.bootstrap_servers) as gate:
        config = producer_config(kafka_settings, "test") | {
            "bootstrap.servers": f"127.0.0.1:{gate.port}",
            "queue.buffering.max.messages": 1,
        }
        producer = Producer(config)
        stop = threading.Event()
        publisher = KafkaPublisher(producer, flush_timeout_s=0.1, stop=stop)
        publisher.publish("t.unreachable", b"k", b"first")
        raised: list[BaseException] = []

        def second() -> None:
            try:
                publisher.publish("t.unreachable", b"k", b"second")
            except BaseException as exc:  # handed to the test thread
                raised.append(exc)

        thread = threading.Thread(target=second, daemon=True)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive()  # waiting for room, as it should while not stopped
        stop.set()
        thread.join(2.0)
        assert not thread.is_alive(), "publish ignored the stop"
        assert len(raised) == 1 and isinstance(raised[0], PublishStoppedError)
        with pytest.raises(PublishStoppedError):  # and at once while stopped
            publisher.publish("t.unreachable", b"k", b"third")
        assert producer.purge() is None
        assert publisher.flush() == 0
