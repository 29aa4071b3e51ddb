"""The forecaster's handler: bars in; origins fitted, forecasts written, arrived steps scored.

`process` is pure but for where it computes: the fits of a batch's due origins run in the
process pool, and their results depend only on their windows. Three passes over the batch:
1. feed each bar to a copy of its series; note the origins that fall due (with their windows);
   stop once `max_origins` are due, so a backfill never holds one batch past
   max.poll.interval.ms (the rest of the batch is the next one);
2. fit the due origins in rounds: round r fits every series' r-th origin in parallel (a series'
   origins are sequential: each one may reuse the order the previous one found). First, though,
   a touched series' *pending* origin (below) gets its outcome; and a series' last origin is
   left pending when it is the series' last bar in the batch;
3. walk the fed bars again: score open forecasts whose step this bar is, then open the origin
   made at this bar. Step k of an origin is always the k-th bar of the series after it.

Pending origins keep a fit off the batch's path (with worker processes): the batch that makes
an origin commits at once, with the series marked `pending` in its state, and the fit runs in
the background. Its outcome is applied (origin, forecasts, opened for scoring) by the series'
next batch before any of that batch's bars, or by a sweep once the fit has been done for
APPLY_AFTER_S with no such batch (`sweep_due`). A batch never waits for a fit still running:
the series' bars are *held* in its state instead (not fed, so the window stays the origin's),
the rest of the batch goes on and commits, and the sweep that the fit's end makes due at once
resolves the origin and then feeds, checks and scores the held bars (MAX_HELD bounds them: a
batch that would hold more waits). So bars and alerts are exactly those of a run that waited:
only the transaction that writes them differs. A pending fit's job is the state's own window and
cached order, so a restart or another member fits it again from the state alone.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from confluent_kafka import Message

from analytics.alerts.engine import BarFacts, evaluate_forecast_breach
from analytics.alerts.live import (
    ReloadSweeps,
    RulesInForce,
    alert_rows,
    is_historical,
    sweep,
)
from analytics.alerts.rules import RuleSet
from analytics.alerts.store import AlertRow, insert_alert_events
from analytics.forecaster import store
from analytics.forecaster.clock import BarClock
from analytics.forecaster.pool import FitJob, FitPool, FitResult
from analytics.forecaster.series import ForecastBar, ForecastSeries, OpenOrigin
from ml.metrics import naive_scale
from ml.outcome import Outcome
from ml.params import ForecastParams
from ml.schedule import is_origin
from shared.loop import Effects, Handler, PartitionKey, Record
from shared.metrics import (
    ALERT_COMMIT_LATENCY,
    BARS_SKIPPED,
    FIT_DURATION,
    FIT_SECONDS,
    FITS,
    HELD_BARS,
    PENDING_ORIGINS,
)
from shared.schemas import Bar
from shared.validation import decode_bar

logger = logging.getLogger(__name__)

SeriesKey = tuple[str, str]
# A done pending fit is applied by a sweep once it has waited this long for its series' next bar:
# a bar that comes sooner applies it in its own batch (no transaction of its own, no offset
# rows locked: at 2,000 bars/s and 10 fits/s a sweep per fit was ten more transactions a
# second), and live bars, a minute apart and more, still see their forecasts within a second.
APPLY_AFTER_S = 1.0
# Bars a series holds (kept in its state, not fed) while its pending origin is still being
# fitted, so that a batch never waits for one series' fit: its other series' bars, and their
# alerts, go on. A batch that would hold more waits for the fit instead (a backfill's series
# gets hundreds of bars a batch: its state stays small, and its fits set the pace anyway).
MAX_HELD = 32
PartitionSeries = dict[SeriesKey, ForecastSeries]


@dataclass(frozen=True)
class DueOrigin:
    ts: datetime
    bars: int
    window: tuple[float, ...]
    split_basis: float


@dataclass
class ForecastRows:
    origins: list[tuple[Any, ...]] = field(default_factory=list)
    forecasts: list[tuple[Any, ...]] = field(default_factory=list)
    errors: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)
    alert_created_ms: list[int] = field(
        default_factory=list
    )  # each alert's bar's CreateTime  # forecast breaches, inserted last
    touched: dict[SeriesKey, tuple[int, ForecastSeries]] = field(default_factory=dict)
    # Touched series whose committed state had a pending origin: that origin, to resolve first.
    resolving: dict[SeriesKey, DueOrigin] = field(default_factory=dict)
    # Touched series whose pending origin is still being fitted: their bars are held.
    holding: set[SeriesKey] = field(default_factory=set)
    skipped: int = 0
    swept: str | None = None  # a sweep's rules version (see Handler.sweep_due)


@dataclass
class Feeding:
    """Pass 1 of a batch (or a sweep): the bars fed, in order, with the series' bar count after
    each, and the origins that fell due at them."""

    fed: list[tuple[SeriesKey, int, ForecastBar]] = field(default_factory=list)
    due: dict[SeriesKey, list[DueOrigin]] = field(default_factory=dict)
    origins: int = 0


class ForecastHandler(Handler):
    def __init__(
        self,
        group: str,
        params: ForecastParams,
        exchange: str,
        pool: FitPool,
        max_origins: int,
        rules: RulesInForce,
        historical_age_s: float,
        apply_after_s: float = APPLY_AFTER_S,
    ) -> None:
        self._group = group
        self._apply_after_s = apply_after_s
        self._rules = rules
        self._historical_age_s = historical_age_s
        self._sweeps = ReloadSweeps(rules)
        self._params = params
        self._exchange = exchange
        self._pool = pool
        self._max_origins = max_origins
        self._clocks: dict[str, BarClock] = {}
        # Fits of pending origins in the pool: series -> (its bar count at the origin, future),
        # and those done (a sweep applies them). A memo: any entry can be refitted, same result.
        self._inflight: dict[SeriesKey, tuple[int, Future[FitResult]]] = {}
        # (series, bars) -> monotonic time its fit was done.
        self._finished: dict[tuple[SeriesKey, int], float] = {}
        # Series whose committed state holds bars, and how many: a sweep resolves their fit as
        # soon as it is done.
        self._holding: dict[SeriesKey, int] = {}

    def decode(self, message: Message) -> Bar:
        return decode_bar(message.value())

    def load(
        self, conn: psycopg.Connection, partitions: Sequence[PartitionKey]
    ) -> dict[PartitionKey, PartitionSeries]:
        by_number = {key[1]: key for key in partitions}  # one topic: market.bars
        states: dict[PartitionKey, PartitionSeries] = {key: {} for key in partitions}
        for series_key, (partition, series) in store.load_series(
            conn, self._group, sorted(by_number)
        ).items():
            states[by_number[partition]][series_key] = series
            if series.pending:
                self._start_pending(series_key, series)
            if series.held:
                self._holding[series_key] = len(series.held)
        HELD_BARS.set(sum(self._holding.values()))
        self._sweeps.loaded(s.alerts for series_map in states.values() for s in series_map.values())
        return states

    def process(
        self, records: Sequence[Record], states: Mapping[PartitionKey, PartitionSeries | None]
    ) -> Effects:
        rules = self._rules.current()  # a reload asked for by SIGHUP takes effect here
        if not records:
            if self._sweeps.sweeping is not None:
                return self._sweep(rules, states)
            return self._apply_finished(rules, states)
        rows = ForecastRows()
        new_states: dict[PartitionKey, PartitionSeries] = {}
        feeding = Feeding()
        in_batch = Counter((record.value.symbol, record.value.interval) for record in records)
        consumed = len(records)
        for index, record in enumerate(records):
            bar: Bar = record.value
            key = (bar.symbol, bar.interval)
            series = self._touch(record, key, states, new_states, rows, feeding, in_batch[key])
            newest = series.newest_ts
            if newest is not None and bar.ts <= newest:
                rows.skipped += 1  # a duplicate or a late bar: never fed
                continue
            taken = _forecast_bar(bar, record.timestamp_ms)
            if key in rows.holding:
                series.held.append(taken)  # fed once its pending origin's outcome is in
                continue
            self._feed(key, series, taken, feeding)
            if feeding.origins >= self._max_origins:
                consumed = index + 1
                break
        return self._complete(rules, rows, new_states, feeding, consumed)

    def _complete(
        self,
        rules: RuleSet,
        rows: ForecastRows,
        new_states: dict[PartitionKey, PartitionSeries],
        feeding: Feeding,
        consumed: int | None,
    ) -> Effects:
        """Passes 2 and 3 over the bars fed: fits, then each bar's breach check and scores, and
        the origin made at it opened."""
        outcomes = self._fit(feeding.due, rows)
        for key, bars, taken in feeding.fed:
            self._check_breach(key, bars, taken, rules, rows)
            self._score_and_open(key, bars, taken, rows, outcomes.get((key, bars)))
        return Effects(rows=rows, states=new_states, consumed=consumed)

    def _feed(
        self, key: SeriesKey, series: ForecastSeries, taken: ForecastBar, feeding: Feeding
    ) -> None:
        """Pass 1 for one bar: into the series' window; an origin falls due at it (with its
        window) when the schedule says."""
        series.feed(taken.ts, taken.close, taken.split_basis)
        feeding.fed.append((key, series.bars, taken))
        anchor = self._clock(key[1]).anchor(taken.ts)
        if anchor is not None and is_origin(anchor, series.bars, self._params):
            origin = DueOrigin(taken.ts, series.bars, tuple(series.log_closes), taken.split_basis)
            feeding.due.setdefault(key, []).append(origin)
            feeding.origins += 1

    def _touch(
        self,
        record: Record,
        key: SeriesKey,
        states: Mapping[PartitionKey, PartitionSeries | None],
        new_states: dict[PartitionKey, PartitionSeries],
        rows: ForecastRows,
        feeding: Feeding,
        in_batch: int,
    ) -> ForecastSeries:
        """This batch's copy of the series (made on first touch, committed states untouched).
        A committed pending origin is resolved in this batch when its fit is done, or when
        holding this batch's bars too would hold more than MAX_HELD (the batch then waits for
        it); its held bars are then fed first. Otherwise the series' bars are held."""
        touched = rows.touched.get(key)
        if touched is not None:
            return touched[1]
        partition_key = (record.topic, record.partition)
        series_map = new_states.get(partition_key)
        if series_map is None:
            series_map = new_states[partition_key] = dict(states.get(partition_key) or {})
        committed = series_map.get(key)
        series = ForecastSeries.new(self._params.window) if committed is None else committed.copy()
        series_map[key] = series
        rows.touched[key] = (record.partition, series)
        if committed is not None and committed.pending:
            origin = _pending_origin(committed)
            job = FitJob(origin.window, committed.order, committed.refits_left)
            done = self._submitted(key, origin.bars, job).done()
            if done or len(committed.held) + in_batch > MAX_HELD:
                self._release(key, series, origin, rows, feeding)
            else:
                rows.holding.add(key)
        return series

    def _release(
        self,
        key: SeriesKey,
        series: ForecastSeries,
        origin: DueOrigin,
        rows: ForecastRows,
        feeding: Feeding,
    ) -> None:
        """Resolve the series' pending origin in this batch (pass 2, first) and feed the bars it
        held, in order, before any other."""
        rows.resolving[key] = origin
        held, series.held = series.held, []
        for taken in held:
            self._feed(key, series, taken, feeding)

    def _fit(
        self, due: dict[SeriesKey, list[DueOrigin]], rows: ForecastRows
    ) -> dict[tuple[SeriesKey, int], tuple[DueOrigin, Outcome]]:
        outcomes: dict[tuple[SeriesKey, int], tuple[DueOrigin, Outcome]] = {}
        # Pending origins from earlier batches first: a series' origins are sequential.
        for key, origin in rows.resolving.items():
            series = rows.touched[key][1]
            job = FitJob(origin.window, series.order, series.refits_left)
            started = time.monotonic()
            result = self._pool.result(self._submitted(key, origin.bars, job), job)
            FIT_SECONDS.observe(time.monotonic() - started)
            self._apply_pending(key, origin, result, rows)
        cached = {
            key: (rows.touched[key][1].order, rows.touched[key][1].refits_left) for key in due
        }
        # A series' last origin is left pending when nothing of this batch follows it.
        deferred: dict[SeriesKey, DueOrigin] = {}
        if self._pool.background:
            for key, origins in due.items():
                if origins[-1].bars == rows.touched[key][1].bars:
                    deferred[key] = origins.pop()
        for round_ in range(max((len(origins) for origins in due.values()), default=0)):
            jobs = [(key, origins[round_]) for key, origins in due.items() if len(origins) > round_]
            started = time.monotonic()
            results = self._pool.fit([FitJob(o.window, *cached[key]) for key, o in jobs])
            FIT_SECONDS.observe(time.monotonic() - started)
            for (key, origin), result in zip(jobs, results, strict=True):
                outcome = result.outcome
                outcomes[(key, origin.bars)] = (origin, outcome)
                cached[key] = (outcome.order, outcome.refits_left)
                _count_fit(result)
        for key, (order, refits_left) in cached.items():
            series = rows.touched[key][1]
            series.order, series.refits_left = order, refits_left
        for key, origin in deferred.items():
            rows.touched[key][1].pending = True
            self._submitted(key, origin.bars, FitJob(origin.window, *cached[key]))
        return outcomes

    # -- pending origins ---------------------------------------------------------------

    def _submitted(self, key: SeriesKey, bars: int, job: FitJob) -> Future[FitResult]:
        """The pool's future for the pending origin at bar `bars` of `key` (started if not yet)."""
        entry = self._inflight.get(key)
        if entry is not None and entry[0] == bars:
            return entry[1]
        future = self._pool.submit(job)
        self._inflight[key] = (bars, future)
        PENDING_ORIGINS.set(len(self._inflight))

        def finished(done: Future[FitResult]) -> None:  # in the pool's thread
            if self._inflight.get(key, (0, None))[1] is done:
                self._finished[(key, bars)] = time.monotonic()

        future.add_done_callback(finished)
        return future

    def _start_pending(self, key: SeriesKey, series: ForecastSeries) -> None:
        origin = _pending_origin(series)
        self._submitted(key, origin.bars, FitJob(origin.window, series.order, series.refits_left))

    def _apply_finished(
        self, rules: RuleSet, states: Mapping[PartitionKey, PartitionSeries | None]
    ) -> Effects:
        """A sweep: pending origins whose fit is done, resolved in their series (origin and
        forecast rows, opened for scoring), then the bars each held fed, checked and scored as
        a batch would. Fits of series this member no longer holds are forgotten."""
        finished = set(self._finished)  # a copy: the pool's thread adds to it
        rows = ForecastRows()
        new_states: dict[PartitionKey, PartitionSeries] = {}
        feeding = Feeding()
        matched: set[tuple[SeriesKey, int]] = set()
        for partition_key, series_map in states.items():
            for key, bars in finished:
                series = (series_map or {}).get(key)
                if series is None or not series.pending or series.bars != bars:
                    continue
                matched.add((key, bars))
                copy = series.copy()
                new_states.setdefault(partition_key, dict(series_map or {}))[key] = copy
                rows.touched[key] = (partition_key[1], copy)
                self._release(key, copy, _pending_origin(series), rows, feeding)
        loaded = {key for series_map in states.values() for key in (series_map or {})}
        for key, bars in finished - matched:
            self._finished.pop((key, bars), None)
            if self._inflight.get(key, (None,))[0] == bars:
                del self._inflight[key]
            if key not in loaded:  # its partition moved to another member
                self._holding.pop(key, None)
        PENDING_ORIGINS.set(len(self._inflight))
        HELD_BARS.set(sum(self._holding.values()))
        return self._complete(rules, rows, new_states, feeding, None)

    def _apply_pending(
        self, key: SeriesKey, origin: DueOrigin, result: FitResult, rows: ForecastRows
    ) -> None:
        """A pending origin's outcome, into this batch's copy of its series: the cached order
        moves on, the origin's rows are written and its forecasts opened."""
        series = rows.touched[key][1]
        outcome = result.outcome
        series.order, series.refits_left = outcome.order, outcome.refits_left
        series.pending = False
        _count_fit(result)
        self._open(key, origin, outcome, rows)

    def _forget_applied(self, rows: ForecastRows) -> None:
        """After a commit: drop the fits whose outcome the committed states now hold."""
        for key, (_partition, series) in rows.touched.items():
            entry = self._inflight.get(key)
            if entry is not None and not (series.pending and entry[0] == series.bars):
                del self._inflight[key]
                self._finished.pop((key, entry[0]), None)
        PENDING_ORIGINS.set(len(self._inflight))

    def _score_and_open(
        self,
        key: SeriesKey,
        bars: int,
        bar: ForecastBar,
        rows: ForecastRows,
        made: tuple[DueOrigin, Outcome] | None,
    ) -> None:
        series = rows.touched[key][1]
        horizon = self._params.horizon
        still_open = []
        for origin in series.open:
            step = bars - origin.bars
            if 1 <= step <= horizon:
                rows.errors.extend(_errors(key, origin, step, bar))
            if step < horizon:
                still_open.append(origin)
        series.open = still_open
        if made is not None:
            self._open(key, *made, rows)

    def _open(
        self, key: SeriesKey, origin: DueOrigin, outcome: Outcome, rows: ForecastRows
    ) -> None:
        """The rows of an origin's outcome; fitted forecasts are opened for scoring."""
        series = rows.touched[key][1]
        horizon = self._params.horizon
        clock = self._clock(key[1])
        targets = [clock.target(origin.ts, k) for k in range(1, horizon + 1)]
        scale = naive_scale(np.exp(np.asarray(origin.window)))
        rows.origins.append(store.origin_row(key, origin.ts, outcome, len(origin.window), scale))
        steps: dict[str, Any] = {}
        for forecast in outcome.forecasts:
            rows.forecasts.extend(store.forecast_rows(key, origin.ts, targets, forecast))
            steps[forecast.model] = tuple(
                zip(
                    forecast.median,
                    forecast.lo80,
                    forecast.hi80,
                    forecast.lo95,
                    forecast.hi95,
                    strict=True,
                )
            )
        if steps:
            series.open.append(OpenOrigin(origin.ts, origin.bars, origin.split_basis, scale, steps))

    def _check_breach(
        self,
        key: SeriesKey,
        bars: int,
        bar: ForecastBar,
        rules: RuleSet,
        rows: ForecastRows,
    ) -> None:
        """Bar t against step k of the fitted forecast whose origin is k bars before it (the
        newest such origin); no fitted forecast on t: the machines do not move."""
        series = rows.touched[key][1]
        lo95 = hi95 = None
        for origin in reversed(series.open):
            step = bars - origin.bars
            arima = origin.forecasts.get("arima")
            if arima is not None and 1 <= step <= len(arima):
                to_bar_basis = origin.split_basis / bar.split_basis
                lo95, hi95 = arima[step - 1][3] * to_bar_basis, arima[step - 1][4] * to_bar_basis
                break
        facts = BarFacts(key[0], key[1], bar.ts, bar.close, bar.volume, bar.split_basis, {})
        transitions = evaluate_forecast_breach(rules, series.alerts, facts, lo95, hi95)
        if transitions:
            historical = is_historical(
                key[1], bar.ts, bar.fetched_at, bar.created_ms, self._historical_age_s
            )
            rows.alerts.extend(alert_rows(transitions, historical))
            rows.alert_created_ms.extend([bar.created_ms] * len(transitions))

    def sweep_due(self) -> bool:
        """After a rules reload (or a load that found machines of replaced rules): resolve the
        orphaned forecast-breach machines of every loaded series now. Else, once a pending fit
        has been done for `apply_after_s` with no bar of its series to apply it: apply it (its
        forecasts appear without waiting for the next bar), or at once when its series holds
        bars (their breach checks wait for it)."""
        if self._sweeps.due():
            return True
        applied_by = time.monotonic() - self._apply_after_s
        return any(
            key in self._holding or done <= applied_by
            for (key, _bars), done in list(self._finished.items())
        )

    def _sweep(
        self, rules: RuleSet, states: Mapping[PartitionKey, PartitionSeries | None]
    ) -> Effects:
        swept = sweep(rules, states, lambda series: series.last_ts)
        partition_of = {
            key: partition[1]
            for partition, series_map in swept.states.items()
            for key in series_map
        }
        rows = ForecastRows(
            alerts=swept.rows,
            touched={key: (partition_of[key], s) for key, s in swept.series.items()},
            swept=rules.version,
        )
        return Effects(rows=rows, states=swept.states)

    def committed(self, effects: Effects, committed_at_ms: float) -> None:
        self._sweeps.committed(effects.rows.swept)
        self._forget_applied(effects.rows)
        for key, (_partition, series) in effects.rows.touched.items():
            if series.held:
                self._holding[key] = len(series.held)
            else:
                self._holding.pop(key, None)
        HELD_BARS.set(sum(self._holding.values()))
        for created_ms in effects.rows.alert_created_ms:
            ALERT_COMMIT_LATENCY.labels("forecaster").observe((committed_at_ms - created_ms) / 1000)

    def finish(self, conn: psycopg.Connection, effects: Effects) -> None:
        """Alert events last: their advisory lock is held only until this COMMIT."""
        insert_alert_events(conn, effects.rows.alerts)

    def write(self, conn: psycopg.Connection, effects: Effects) -> None:
        rows: ForecastRows = effects.rows
        store.write_rows(conn, rows.origins, rows.forecasts, rows.errors)
        store.save_series(conn, self._group, rows.touched)
        BARS_SKIPPED.labels("forecaster").inc(rows.skipped)

    def _clock(self, interval: str) -> BarClock:
        clock = self._clocks.get(interval)
        if clock is None:
            clock = self._clocks[interval] = BarClock(self._exchange, interval)
        return clock


def _count_fit(result: FitResult) -> None:
    outcome = result.outcome
    labels = (outcome.status.value, "search" if outcome.searched else "refit")
    FITS.labels(*labels).inc()
    FIT_DURATION.labels(*labels).observe(result.seconds)


def _pending_origin(series: ForecastSeries) -> DueOrigin:
    """A committed state's pending origin: its last bar, with the window as it is (no bar was
    fed after a pending origin: the batch that feeds one applies the origin first)."""
    if series.last_ts is None or series.split_basis is None:
        raise ValueError("a pending origin in a series that has no bar")
    return DueOrigin(series.last_ts, series.bars, tuple(series.log_closes), series.split_basis)


def _forecast_bar(bar: Bar, created_ms: int) -> ForecastBar:
    return ForecastBar(bar.ts, bar.close, bar.volume, bar.split_basis, bar.fetched_at, created_ms)


def _errors(
    key: SeriesKey, origin: OpenOrigin, step: int, bar: ForecastBar
) -> list[tuple[Any, ...]]:
    """One forecast_errors row per model for the bar that is `step` of `origin`. The actual is
    brought to the basis the forecast was made in."""
    actual = bar.close * (bar.split_basis / origin.split_basis)
    rows = []
    for model, steps in origin.forecasts.items():
        median, lo80, hi80, lo95, hi95 = steps[step - 1]
        error = abs(actual - median)
        rows.append(
            (
                key[0],
                key[1],
                origin.origin_ts,
                step,
                model,
                bar.ts,
                actual,
                error,
                error / origin.scale if origin.scale > 0 else None,
                lo80 <= actual <= hi80,
                lo95 <= actual <= hi95,
            )
        )
    return rows
