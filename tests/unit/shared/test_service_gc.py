"""Every service runs with the young-generation GC threshold that keeps pauses out of its
batches (shared.service.GC_YOUNG_THRESHOLD)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from shared import services
from shared.health import Health
from shared.service import GC_YOUNG_THRESHOLD, run_service
from shared.settings import Settings


@pytest.fixture
def restored_gc() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_a_service_runs_with_the_raised_young_threshold(
    restored_gc: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTH_PORT", "0")  # the OS picks a free port
    seen: list[tuple[int, int, int]] = []

    def run(_settings: Settings, _stop: threading.Event, _health: Health) -> None:
        seen.append(gc.get_threshold())

    assert restored_gc[0] != GC_YOUNG_THRESHOLD  # the interpreter's default, before
    assert run_service(services.ANALYTICS_CONSUMER.name, run, []) == 0
    assert seen == [(GC_YOUNG_THRESHOLD, restored_gc[1], restored_gc[2])]
