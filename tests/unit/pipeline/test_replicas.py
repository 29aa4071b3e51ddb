"""A service of several replicas as the status screen and the monitor see it: rates and rows
summed, red when any replica is red or an expected one does not answer, naming which."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.replicas import combine
from pipeline.status_screen import Screen, ServiceRow, render
from pipeline_supervisor.status import Totals
from shared.services import CONSUMER_STORAGE


def up(at: float, messages: float, rows: float, *reasons: str):  # noqa: ANN201
    return Totals(at, messages, rows), tuple(reasons), ()


DOWN = (None, (), ())


def test_replica_ports_follow_the_health_settings() -> None:
    assert CONSUMER_STORAGE.health_port(18080, 0) == 18090
    assert CONSUMER_STORAGE.health_port(18080, 2) == 18290


def test_rates_and_rows_are_summed_over_replicas() -> None:
    first = {0: up(0.0, 100, 50), 1: up(0.0, 10, 5)}
    second = {0: up(1.0, 130, 60), 1: up(1.0, 20, 9)}
    service = combine(first, second, expected=2)
    assert service.up and service.healthy
    assert service.rate == 40.0 and service.rows == 69.0 and service.messages == 150.0
    assert [(r.index, r.rate, r.rows) for r in service.replicas] == [(0, 30.0, 60), (1, 10.0, 9)]
    assert service.reasons == ()


def test_a_red_or_missing_replica_makes_the_service_red_and_is_named() -> None:
    red = combine({}, {0: up(1.0, 1, 1), 1: up(1.0, 1, 1, "kafka: unreachable")}, expected=2)
    assert red.healthy is False and red.reasons == ("replica 1: kafka: unreachable",)
    missing = combine({}, {0: up(1.0, 1, 1), 1: DOWN}, expected=2)
    assert missing.up and missing.healthy is False
    assert missing.reasons == ("replica 1: not answering",)
    assert [r.up for r in missing.replicas] == [True, False]


def test_one_replica_reads_as_before() -> None:
    alone = combine({0: up(0.0, 1, 1)}, {0: up(2.0, 5, 3, "paused")}, expected=1)
    assert alone.rate == 2.0 and alone.healthy is False and alone.reasons == ("paused",)
    gone = combine({}, {0: DOWN}, expected=1)
    assert not gone.up and gone.healthy is None and gone.rate is None and gone.reasons == ()


def test_an_extra_replica_that_answers_counts_and_one_that_does_not_is_left_out() -> None:
    service = combine({}, {0: up(1.0, 1, 1), 1: up(1.0, 1, 2)}, expected=1)
    assert service.healthy and service.rows == 3.0 and len(service.replicas) == 2
    past_the_count = combine({}, {0: up(1.0, 1, 1), 1: DOWN}, expected=1)
    assert past_the_count.healthy and len(past_the_count.replicas) == 1


def test_the_screen_shows_each_replica_under_its_service() -> None:
    service = combine({}, {0: up(1.0, 1, 7), 1: DOWN}, expected=2)
    row = ServiceRow(
        "consumer.storage",
        "up",
        service.healthy,
        service.rate,
        service.rows,
        None,
        0,
        service.reasons,
        service.notes,
        service.replicas,
    )
    text = render(Screen(datetime(2024, 6, 10, tzinfo=UTC), [row], [], "test"), color=False)
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("consumer.storage"))
    assert lines[at].split()[:3] == ["consumer.storage", "up", "RED"]
    assert "replica 1: not answering" in text
    assert lines[at + 1].split()[:4] == ["#0", "up", "ok", "-"]
    assert lines[at + 2].split()[:3] == ["#1", "down", "-"]
