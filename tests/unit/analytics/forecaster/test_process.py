"""The forecaster's `process` on plain lists of a recorded series: origins where the schedule
says, values equal to a direct fit of the same window, purity, and a bounded batch."""

from __future__ import annotations

import time
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pytest
from prometheus_client import REGISTRY

from analytics.alerts.live import RulesInForce
from analytics.forecaster import handler as handler_module
from analytics.forecaster.handler import ForecastHandler
from analytics.forecaster.pool import FitJob, FitPool, FitResult
from analytics.forecaster.series import ForecastSeries
from ml.forecast import forecast_origin
from ml.params import ForecastParams
from ml.yahoo_recordings import read_chart
from shared.loop import Effects, Record
from shared.schemas import Bar, event_id
from shared.settings import AlertRulesSettings

PARAMS = ForecastParams(min_bars=120, window=500, horizon=5, every=5)
TOPIC = "market.bars"


@pytest.fixture(scope="module")
def bars(recordings: Path) -> list[Bar]:
    series = read_chart(recordings / "yahoo" / "chart_AAPL_1d_2020.json")
    out = []
    for day, close in zip(series.days, series.closes, strict=True):
        ts = datetime(day.year, day.month, day.day, tzinfo=UTC)
        out.append(
            Bar(
                event_id=event_id("test", "AAPL", "1d", ts),
                source="test",
                symbol="AAPL",
                interval="1d",
                ts=ts,
                open=float(close),
                high=float(close),
                low=float(close),
                close=float(close),
                adj_close=None,
                volume=1,
                fetched_at=datetime(2021, 1, 1, tzinfo=UTC),
            )
        )
    return out


def records(bars: list[Bar], first: int = 0) -> list[Record]:
    return [Record(TOPIC, 0, first + i, b"AAPL", bar, 0) for i, bar in enumerate(bars)]


def handler(max_origins: int = 1000) -> ForecastHandler:
    rules = RulesInForce(AlertRulesSettings().rules_path)
    return ForecastHandler(
        "g", PARAMS, "XNYS", FitPool(PARAMS, workers=0), max_origins, rules, 3600
    )


def test_origins_follow_the_session_schedule_and_equal_a_direct_fit(bars: list[Bar]) -> None:
    effects = handler().process(records(bars), {})
    origins = effects.rows.origins
    assert origins, "a year of bars has origins"
    # Every origin is on a multiple of N of the session index, once M bars exist.
    from analytics.forecaster.clock import BarClock

    clock = BarClock("XNYS", "1d")
    position = {bar.ts: i for i, bar in enumerate(bars)}
    expected = [b.ts for i, b in enumerate(bars) if i + 1 >= 120 and clock.anchor(b.ts) % 5 == 0]
    assert [row[2] for row in origins] == expected
    # The first origin's ARIMA equals forecast_origin on the same window.
    first = origins[0][2]
    window = np.log([b.close for b in bars[: position[first] + 1]])
    direct = forecast_origin(window, None, 0, PARAMS)
    arima = [r for r in effects.rows.forecasts if r[2] == first and r[5] == "arima"]
    assert direct.status.value == "fitted", direct.message
    assert [r[6] for r in arima] == list(direct.forecast("arima").median)
    assert [r[12] for r in arima] == [f"({','.join(map(str, direct.order))})"] * 5
    # Nested intervals; targets on sessions (2020-12-25 is none).
    for row in effects.rows.forecasts:
        assert row[10] <= row[8] <= row[6] <= row[9] <= row[11]
        assert row[4] is None or row[4].date() != datetime(2020, 12, 25).date()
    # Steps that arrived are scored for every model of their origin.
    assert effects.rows.errors
    assert {row[4] for row in effects.rows.errors} >= {"naive", "drift"}


def test_process_is_pure_and_a_split_batch_equals_a_whole_one(bars: list[Bar]) -> None:
    h = handler()
    first = h.process(records(bars[:150]), {})
    committed = dict(first.states)
    before = repr(committed)
    whole = h.process(records(bars[150:], 150), committed)
    assert repr(committed) == before
    head = h.process(records(bars[150:200], 150), committed)
    tail = h.process(records(bars[200:], 200), {**committed, **head.states})
    for name in ("origins", "forecasts", "errors"):
        combined = getattr(head.rows, name) + getattr(tail.rows, name)
        assert combined == getattr(whole.rows, name), name


def test_a_batch_stops_at_the_origin_cap(bars: list[Bar]) -> None:
    effects = handler(max_origins=2).process(records(bars), {})
    assert len(effects.rows.origins) == 2
    assert effects.consumed is not None and effects.consumed < len(bars)
    assert bars[effects.consumed - 1].ts == effects.rows.origins[-1][2]


def test_the_service_defaults_are_the_backtests() -> None:
    """What runs in the service is what `python -m ml.backtest` measures."""
    from analytics.forecaster.service import forecast_params
    from shared.settings import ForecastSettings

    assert forecast_params(ForecastSettings()) == ForecastParams()


# -- pending origins: fits off the batch's path ------------------------------------------

ROW_KINDS = ("origins", "forecasts", "errors", "alerts")


def background_handler() -> ForecastHandler:
    rules = RulesInForce(AlertRulesSettings().rules_path)
    return ForecastHandler(
        "g", PARAMS, "XNYS", FitPool(PARAMS, workers=1), 1000, rules, 3600, apply_after_s=0.0
    )


def run_batches(
    h: ForecastHandler,
    bars: list[Bar],
    sizes: list[int],
    sweep_after: bool,
    committed: dict | None = None,
) -> tuple[dict[str, list], dict]:
    """Feed `bars` in batches of `sizes` (cycled), committing each; with `sweep_after`, wait
    for pending fits after each batch and apply them in a sweep. Returns every row written and
    the committed states."""
    states: dict = dict(committed or {})
    written: dict[str, list] = {kind: [] for kind in ROW_KINDS}

    def commit(effects) -> None:  # noqa: ANN001
        for kind in ROW_KINDS:
            written[kind].extend(getattr(effects.rows, kind))
        states.update(effects.states)
        h.committed(effects, 0)

    def sweep() -> None:
        deadline = time.monotonic() + 60
        while any(s.pending for m in states.values() for s in m.values()):
            assert time.monotonic() < deadline, "a pending fit never finished"
            if h.sweep_due():
                commit(h.process([], states))
            else:
                time.sleep(0.01)

    first, cut = 0, 0
    while first < len(bars):
        size = sizes[cut % len(sizes)]
        cut += 1
        commit(h.process(records(bars[first : first + size], first), states))
        first += size
        if sweep_after:
            sweep()
    sweep()
    return written, states


def comparable(written: dict[str, list]) -> dict[str, list]:
    return {kind: sorted(map(repr, rows)) for kind, rows in written.items()}


def series_states(states: dict) -> dict:
    return {key: s.to_state() for m in states.values() for key, s in m.items()}


@pytest.mark.parametrize("sweep_after", [False, True], ids=["next-bar", "sweep"])
def test_pending_origins_give_the_rows_and_states_of_a_forecaster_that_waits(
    bars: list[Bar], sweep_after: bool
) -> None:
    """Batches of 1, 3 and 7 bars: each origin that ends a batch is left pending and applied
    by the series' next batch (or by a sweep once its fit is done): every row, alert and
    final state equals those of fits waited for in the batch."""
    expected, expected_states = run_batches(handler(), bars, [1, 3, 7], sweep_after=False)
    h = background_handler()
    try:
        assert h._pool.background  # noqa: SLF001 (the path under test)
        written, states = run_batches(h, bars, [1, 3, 7], sweep_after)
    finally:
        h._pool.close()  # noqa: SLF001
    assert expected["origins"] and expected["alerts"], "the series has origins and breaches"
    assert comparable(written) == comparable(expected)
    assert series_states(states) == series_states(expected_states)


def test_a_batch_commits_with_its_last_origin_pending_and_a_new_member_fits_it_again(
    bars: list[Bar],
) -> None:
    h = background_handler()
    origin_at = next(
        i for i in range(len(bars)) if handler().process(records(bars[: i + 1]), {}).rows.origins
    )
    try:
        made = h.process(records(bars[: origin_at + 1]), {})
        (series,) = made.states[(TOPIC, 0)].values()
        assert series.pending and not made.rows.origins  # committed without waiting
    finally:
        h._pool.close()  # noqa: SLF001
    # Another member (no fit in flight) applies it from the state alone, before the next bar.
    other = background_handler()
    try:
        written, _ = run_batches(
            other, bars[origin_at + 1 : origin_at + 2], [1], False, dict(made.states)
        )
    finally:
        other._pool.close()  # noqa: SLF001
    waited = handler().process(records(bars[: origin_at + 2]), {}).rows
    assert [r[2] for r in written["origins"]] == [bars[origin_at].ts]
    assert sorted(map(repr, written["forecasts"])) == sorted(map(repr, waited.forecasts))


def test_a_done_fit_waits_for_its_series_next_bar_before_a_sweep_applies_it(
    bars: list[Bar],
) -> None:
    rules = RulesInForce(AlertRulesSettings().rules_path)
    h = ForecastHandler(
        "g", PARAMS, "XNYS", FitPool(PARAMS, workers=1), 1000, rules, 3600, apply_after_s=0.5
    )
    origin_at = next(
        i for i in range(len(bars)) if handler().process(records(bars[: i + 1]), {}).rows.origins
    )
    try:
        made = h.process(records(bars[: origin_at + 1]), {})
        h.committed(made, 0)
        deadline = time.monotonic() + 30
        while not h._finished:  # noqa: SLF001 (the fit is done)
            assert time.monotonic() < deadline
            time.sleep(0.01)
        (done_at,) = h._finished.values()  # noqa: SLF001
        if time.monotonic() - done_at < 0.4:  # (a stalled test process may see it later)
            assert not h.sweep_due()  # its series' next bar may still apply it in its batch
        while not h.sweep_due():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert time.monotonic() - done_at >= 0.5
        swept = h.process([], made.states)
    finally:
        h._pool.close()  # noqa: SLF001
    assert [row[2] for row in swept.rows.origins] == [bars[origin_at].ts]


# -- held bars: a batch never waits for a fit still running ---------------------------------


class GatedPool(FitPool):
    """Fits in this process, but a submitted fit is done only once the test opens the gate (or
    a batch waits for it: counted in `waited`)."""

    def __init__(self) -> None:
        super().__init__(PARAMS, workers=0)
        self.gated: list[tuple[Future[FitResult], FitJob]] = []
        self.waited = 0

    @property
    def background(self) -> bool:
        return True

    def submit(self, job: FitJob) -> Future[FitResult]:
        future: Future[FitResult] = Future()
        self.gated.append((future, job))
        return future

    def open_gate(self) -> None:
        for future, job in self.gated:
            if not future.done():
                future.set_result(self._fit_here([job])[0])
        self.gated.clear()

    def result(self, future: Future[FitResult], job: FitJob) -> FitResult:
        if not future.done():
            self.waited += 1
            future.set_result(self._fit_here([job])[0])
        return future.result()


def gated_handler(pool: GatedPool) -> ForecastHandler:
    rules = RulesInForce(AlertRulesSettings().rules_path)
    # A done fit waits an hour for its series' next bar: only held bars make a sweep due at once.
    return ForecastHandler("g", PARAMS, "XNYS", pool, 1000, rules, 3600, apply_after_s=3600)


def renamed(bars: list[Bar], symbol: str) -> list[Bar]:
    """The same recorded bars under another symbol: a second series of the batch."""
    return [
        msgspec.structs.replace(b, symbol=symbol, event_id=event_id("test", symbol, "1d", b.ts))
        for b in bars
    ]


class Committing:
    """A member's view of its commits: the states as committed and every row written."""

    def __init__(self, h: ForecastHandler) -> None:
        self.h = h
        self.states: dict = {}
        self.written: dict[str, list] = {kind: [] for kind in ROW_KINDS}

    def batch(self, batch: list[Bar], first: int) -> Effects:
        effects = self.h.process(records(batch, first), self.states)
        self.commit(effects)
        return effects

    def commit(self, effects: Effects) -> None:
        for kind in ROW_KINDS:
            self.written[kind].extend(getattr(effects.rows, kind))
        self.states.update(effects.states)
        self.h.committed(effects, 0)

    def series(self, symbol: str) -> ForecastSeries:
        return self.states[(TOPIC, 0)][(symbol, "1d")]


def first_origin(bars: list[Bar]) -> int:
    return next(
        i for i in range(len(bars)) if handler().process(records(bars[: i + 1]), {}).rows.origins
    )


def test_a_series_whose_fit_still_runs_holds_its_bars_and_the_batch_goes_on(
    bars: list[Bar],
) -> None:
    """A's origin is pending and its fit not done: the next batch holds A's bars (no rows of
    A, nothing waited for) and writes B's; the fit's end makes a sweep due at once, which
    resolves the origin and feeds, scores and checks A's held bars. Every row and the final
    states equal those of a member that waited for each fit in its batch."""
    a_bars, b_bars = bars, renamed(bars, "BBBB")
    at = first_origin(bars)
    cut = at + 1 + 12  # A's origin ends batch 1; batch 2 has 12 more bars of A, then B's
    batches = [a_bars[: at + 1], a_bars[at + 1 : cut] + b_bars[: at + 12]]
    waiting = Committing(handler())
    for n, batch in enumerate(batches):
        waiting.batch(batch, 1000 * n)

    pool = GatedPool()
    member = Committing(gated_handler(pool))
    member.batch(batches[0], 0)
    assert member.series("AAPL").pending and not member.written["origins"]
    held = member.batch(batches[1], 1000)
    assert pool.waited == 0, "the batch waited for a fit"
    assert [b.ts for b in member.series("AAPL").held] == [b.ts for b in a_bars[at + 1 : cut]]
    assert member.series("AAPL").bars == at + 1  # held bars are not fed
    assert {row[0] for row in held.rows.origins} == {"BBBB"}  # B went on in the same batch
    assert {row[0] for row in held.rows.errors} == {"BBBB"}
    assert not member.h.sweep_due()
    pool.open_gate()
    assert member.h.sweep_due(), "a done fit of a series holding bars is applied at once"
    swept = member.h.process([], member.states)
    member.commit(swept)
    assert {row[0] for row in swept.rows.errors} == {"AAPL"}
    assert not member.series("AAPL").held and member.series("AAPL").bars == cut
    assert pool.waited == 0
    assert comparable(member.written) == comparable(waiting.written)
    assert series_states(member.states) == series_states(waiting.states)
    assert waiting.written["errors"], "held bars were scored against the origin's forecasts"


def test_held_bars_survive_a_restart_and_a_new_member_holds_on(bars: list[Bar]) -> None:
    """States committed with held bars, loaded through their stored form by a new member (its
    fit of the pending origin started anew): the series' next bars are held after them, and
    the sweep after the fit gives what a waiting member wrote."""
    at = first_origin(bars)
    batches = [bars[: at + 1], bars[at + 1 : at + 4], bars[at + 4 : at + 9]]
    waiting = Committing(handler())
    for n, batch in enumerate(batches):
        waiting.batch(batch, 1000 * n)

    first = Committing(gated_handler(GatedPool()))
    first.batch(batches[0], 0)
    first.batch(batches[1], 1000)
    (series,) = first.states[(TOPIC, 0)].values()
    assert len(series.held) == 3
    saved = series.copy()
    document, window = saved.stored()  # (marks the copy's window as stored)
    assert window is not None
    restored = ForecastSeries.from_state(document, series.last_ts, (series.bars, window))
    assert restored == saved

    pool = GatedPool()
    second = Committing(gated_handler(pool))
    second.states = {(TOPIC, 0): {("AAPL", "1d"): restored}}
    second.written = {kind: list(rows) for kind, rows in first.written.items()}
    second.batch(batches[2], 2000)
    assert len(second.series("AAPL").held) == 8 and pool.waited == 0
    pool.open_gate()
    while second.series("AAPL").pending:
        assert second.h.sweep_due()
        second.commit(second.h.process([], second.states))
        pool.open_gate()  # a held bar may have made the next origin pending
    assert comparable(second.written) == comparable(waiting.written)
    assert series_states(second.states) == series_states(waiting.states)


def test_a_batch_that_would_hold_more_than_max_held_waits_for_the_fit(
    bars: list[Bar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handler_module, "MAX_HELD", 4)
    at = first_origin(bars)
    pool = GatedPool()
    member = Committing(gated_handler(pool))
    member.batch(bars[: at + 1], 0)
    member.batch(bars[at + 1 : at + 4], 1000)  # 3 held
    assert len(member.series("AAPL").held) == 3 and pool.waited == 0
    member.batch(bars[at + 4 : at + 6], 2000)  # 3 + 2 > 4: resolved in the batch
    assert pool.waited == 1 and not member.series("AAPL").held
    pool.open_gate()  # the batch's own last origin, pending: applied by a sweep
    member.commit(member.h.process([], member.states))
    waiting = Committing(handler())
    for n, batch in enumerate([bars[: at + 1], bars[at + 1 : at + 4], bars[at + 4 : at + 6]]):
        waiting.batch(batch, 1000 * n)
    assert comparable(member.written) == comparable(waiting.written)
    assert series_states(member.states) == series_states(waiting.states)


def test_held_bars_of_a_partition_that_moved_away_are_no_longer_counted(bars: list[Bar]) -> None:
    """The member holds A's bars, then loses A's partition (its sweep no longer sees the state)
    and A's fit ends: the sweep forgets the fit and the held bars leave the gauge."""
    at = first_origin(bars)
    pool = GatedPool()
    member = Committing(gated_handler(pool))
    member.batch(bars[: at + 1], 0)
    member.batch(bars[at + 1 : at + 4], 1000)

    def held() -> float | None:
        return REGISTRY.get_sample_value("pipeline_forecast_held_bars")

    assert held() == 3
    pool.open_gate()
    assert member.h.sweep_due()
    swept = member.h.process([], {})  # the partition is another member's now
    assert not swept.rows.origins and not swept.states
    assert held() == 0 and not member.h.sweep_due()
