"""The monitor's figures (lag per partition) and the status screen: red when stale or red."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.figures import Figure, ServiceReading, consumer_lag, freshness, services
from pipeline.freshness import Freshness, State
from pipeline.status_screen import RED, Screen, ServiceRow, render


def test_lag_is_high_watermark_minus_stored_offset_per_partition() -> None:
    stored = {("storage", "market.bars", 0): 90, ("storage", "market.bars", 1): 5}
    marks = {("market.bars", 0): (0, 100), ("market.bars", 1): (10, 12), ("market.bars", 2): (3, 7)}
    lag = {f.labels["partition"]: f.value for f in consumer_lag(stored, marks)}
    # 1: stored below the log start counts from the log start; 2: nothing stored yet.
    assert lag == {"0": 10.0, "1": 2.0, "2": 4.0}
    assert all(f.name == "pipeline_consumer_lag_messages" for f in consumer_lag(stored, marks))
    assert consumer_lag(stored, {("other.topic", 0): (0, 9)}) == []


def test_freshness_and_service_figures() -> None:
    now = datetime(2024, 6, 10, tzinfo=UTC)
    verdicts = [
        Freshness("bars", State.STALE, now, 30.0, 5.0, "x"),
        Freshness("articles", State.EMPTY, None, None, 0.0, "nothing"),
    ]
    assert freshness(verdicts) == [
        Figure("pipeline_data_age_seconds", {"domain": "bars"}, 30.0),
        Figure("pipeline_data_stale", {"domain": "bars"}, 1.0),
        Figure("pipeline_data_stale", {"domain": "articles"}, 0.0),
    ]
    down = services([ServiceReading("producer.news", up=False)])
    assert down == [Figure("pipeline_service_up", {"service": "producer.news"}, 0.0)]


def screen(state: State, healthy: bool = True) -> Screen:
    now = datetime(2024, 6, 10, 12, tzinfo=UTC)
    row = ServiceRow("consumer.storage", "up", healthy, 1.5, 10.0, 3, 1)
    return Screen(now, [row], [Freshness("bars", state, now, 60.0, 0.0, "d")], "test")


def test_the_screen_is_red_when_a_domain_is_stale_or_a_service_red() -> None:
    assert not screen(State.FRESH).red
    assert screen(State.STALE).red
    assert screen(State.FRESH, healthy=False).red
    assert not screen(State.EMPTY).red  # nothing stored yet is shown, not red
    text = render(screen(State.STALE), color=True)
    stale_line = next(line for line in text.splitlines() if line.lstrip(RED).startswith("bars"))
    assert stale_line.startswith(RED) and "stale" in stale_line
    plain = render(screen(State.FRESH), color=False)
    assert "\x1b" not in plain and "pipeline status OK" in plain
    row = next(line for line in plain.splitlines() if line.startswith("consumer.storage"))
    assert row.split() == ["consumer.storage", "up", "ok", "1.5", "10", "3", "1"]
