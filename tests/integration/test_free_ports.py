"""Ports handed to test services: never the same one twice in a run, even when drawn at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.integration import processes


class EveryPortFree:
    """A socket whose bind always succeeds: these tests draw fixed ports, which another test's
    service may hold at that moment; what they check is the run's registry."""

    def __enter__(self) -> EveryPortFree:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def bind(self, _address: object) -> None:
        return None


@pytest.fixture(autouse=True)
def own_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", f"test-{uuid.uuid4().hex}")
    monkeypatch.setattr(processes, "socket", SimpleNamespace(socket=EveryPortFree))
    yield
    processes.handed_out_file().unlink(missing_ok=True)


def test_a_port_drawn_again_is_not_handed_out_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two workers drawing the same random base (the race behind a service failing to bind its
    # health port): the second must get another one, though the first is still free until its
    # service binds it.
    draws = iter([20000, 20000, 20000, 20010])
    monkeypatch.setattr(processes.random, "randrange", lambda *_args: next(draws))
    first = processes.free_base(lambda base: [base, base + 5], span=5)
    second = processes.free_base(lambda base: [base, base + 5], span=5)
    assert (first, second) == (20000, 20010)
    assert processes.handed_out_file().read_text().split() == ["20000", "20005", "20010", "20015"]


def test_a_range_overlapping_a_handed_out_port_is_not_drawn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws = iter([30005, 30000, 30100])
    monkeypatch.setattr(processes.random, "randrange", lambda *_args: next(draws))
    assert processes.free_port() == 30005
    assert processes.free_port_range(10) == 30100  # 30000..30010 holds 30005
