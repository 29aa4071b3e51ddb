"""The analytics handler's `process` on plain lists: pure, repeatable, never touching `states`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from analytics.alerts.live import RulesInForce
from analytics.consumer.handler import AnalyticsHandler
from analytics.indicators import IndicatorParams
from analytics.store import encode_state
from shared.loop import Record
from shared.schemas import Bar, event_id
from shared.settings import AlertRulesSettings

TOPIC = "market.bars"
RULES = RulesInForce(AlertRulesSettings().rules_path)
START = datetime(2024, 10, 2, 13, 30, tzinfo=UTC)


def bar(symbol: str, minute: int, close: float) -> Bar:
    ts = START + timedelta(minutes=minute)
    return Bar(
        event_id=event_id("test", symbol, "1m", ts),
        source="test",
        symbol=symbol,
        interval="1m",
        ts=ts,
        open=close,
        high=close + 1,
        low=close - 1,
        close=close,
        adj_close=None,
        volume=100,
        fetched_at=START + timedelta(days=1),
    )


def records(bars: list[Bar], partition: int = 0, first_offset: int = 0) -> list[Record]:
    return [
        Record(TOPIC, partition, first_offset + i, b.symbol.encode(), b, 0)
        for i, b in enumerate(bars)
    ]


def snapshot(states: dict) -> dict:
    return {
        key: {series: encode_state(s.state) for series, s in by_series.items()}
        for key, by_series in states.items()
    }


def test_process_is_pure_and_repeatable() -> None:
    handler = AnalyticsHandler("g", IndicatorParams(), 7, "XNYS", RULES, 3600)
    first = handler.process(records([bar("AAPL", i, 100.0 + i) for i in range(60)]), {})
    committed = dict(first.states)
    before = snapshot(committed)

    batch = records([bar("AAPL", 60 + i, 160.0 - i) for i in range(5)], first_offset=60)
    one = handler.process(batch, committed)
    two = handler.process(batch, committed)  # a rolled-back or bisected batch, processed again
    assert snapshot(committed) == before  # the committed state was not touched
    assert one.rows.rows == two.rows.rows
    assert snapshot(one.states) == snapshot(two.states) != before
    assert all(row[-2:] == (7, 1.0) for row in one.rows.rows)  # params id, split basis

    # Processing in two parts (how a batch is bisected) equals processing it whole.
    head = handler.process(batch[:2], committed)
    tail = handler.process(batch[2:], {**committed, **head.states})
    assert head.rows.rows + tail.rows.rows == one.rows.rows
    assert snapshot(tail.states) == snapshot(one.states)


def test_repeats_and_older_bars_are_not_fed() -> None:
    handler = AnalyticsHandler("g", IndicatorParams(), 1, "XNYS", RULES, 3600)
    committed = handler.process(records([bar("MSFT", i, 50.0 + i) for i in range(3)]), {}).states
    effects = handler.process(
        records([bar("MSFT", 2, 52.0), bar("MSFT", 0, 50.0), bar("MSFT", 3, 53.0)], 0, 3),
        committed,
    )
    assert effects.rows.repeats == 1  # the newest bar again
    assert [(b.ts, newest) for b, newest in effects.rows.older] == [
        (START, START + timedelta(minutes=2))
    ]
    assert len(effects.rows.rows) == 1  # only minute 3 was fed
    assert list(effects.rows.touched) == [("MSFT", "1m")]


def test_in_place_computes_the_same_and_keeps_each_batch_rows_as_they_were() -> None:
    """A batch the loop writes in flight is processed in place: the same rows and states as on
    copies, and its analytics_state rows (saved on the writer thread while the next batch moves
    the same series on) stay those of its own end."""
    handler = AnalyticsHandler("g", IndicatorParams(), 7, "XNYS", RULES, 3600)
    warm = records([bar("AAPL", i, 100.0 + i) for i in range(60)])
    batches = [
        records([bar("AAPL", 60 + i, 160.0 - i) for i in range(5)], first_offset=60),
        records([bar("AAPL", 65 + i, 150.0 + i) for i in range(5)], first_offset=65),
    ]
    on_copies = [handler.process(warm, {})]
    for batch in batches:
        on_copies.append(handler.process(batch, dict(on_copies[-1].states)))

    in_place = [handler.process(warm, {})]
    live = dict(in_place[0].states)
    first = handler.process(batches[0], live, in_place=True)
    first_rows = dict(first.rows.packed)
    assert snapshot(live) == snapshot(first.states)  # changed where it stood
    second = handler.process(batches[1], dict(first.states), in_place=True)

    assert first.rows.packed == first_rows == on_copies[1].rows.packed
    assert first.rows.packed[("AAPL", "1m")].last_ts == START + timedelta(minutes=64)
    assert second.rows.packed == on_copies[2].rows.packed
    assert [e.rows.rows for e in (first, second)] == [e.rows.rows for e in on_copies[1:]]
    assert [e.rows.alerts for e in (first, second)] == [e.rows.alerts for e in on_copies[1:]]
