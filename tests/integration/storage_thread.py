"""The storage consumer in a thread of the test process, drained on demand."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from consumer.storage.service import SERVICE, run
from shared.health import Health
from shared.kafka import topics_for
from shared.service import ServiceRun
from shared.settings import ConsumerSettings, Settings
from tests.integration.bar_stream import drained
from tests.integration.processes import wait_for


@contextmanager
def in_thread(service: str, run: ServiceRun, settings: Settings) -> Iterator[None]:
    """Run a service's `run` in a thread of the test process until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(settings, stop, Health(service)), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def storage_running(settings: Settings) -> AbstractContextManager[None]:
    """Run consumer.storage until the block ends."""
    return in_thread(SERVICE, run, settings)


def wait_stored(settings: Settings, *topics: str, timeout: float = 60) -> None:
    """Until the storage group's stored offsets reach every topic's end."""
    group = settings.consumer.group_storage
    all_topics = topics or tuple(topics_for(settings.kafka).partitions(settings.kafka))
    wait_for(
        lambda: all(drained(settings.postgres, settings.kafka, group, t) for t in all_topics),
        timeout,
        f"storage to drain {', '.join(all_topics)}",
    )


def fast_consumer() -> ConsumerSettings:
    return ConsumerSettings(poll_timeout_s=0.2)
