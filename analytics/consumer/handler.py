"""The analytics consumer's handler: bars in, one indicators row per bar, exact state per series.

The loop keeps one state per partition: the series (symbol, interval) of that partition, each
with its exact indicator state. `process` feeds copies of the series a batch touches, so the
committed states never change until the batch's transaction has committed — except for a batch
the loop will write in flight, which it lets change the series in place (`in_place`: the loop
reads the states again from the database when such a batch is not committed, see
Handler.process).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from confluent_kafka import Message

from analytics import store
from analytics.alerts.engine import BarFacts, evaluate
from analytics.alerts.live import (
    ReloadSweeps,
    RulesInForce,
    alert_rows,
    is_historical,
    sweep,
)
from analytics.alerts.rules import RuleSet
from analytics.alerts.store import AlertRow, insert_alert_events
from analytics.indicators import IndicatorParams, annualization_factor
from analytics.series import SeriesState
from analytics.store import StoredSeries
from shared.loop import Effects, Handler, PartitionKey, Record
from shared.loop.direct_copy import DirectCopies
from shared.metrics import ALERT_COMMIT_LATENCY, BARS_SKIPPED, ROWS_WRITTEN, UPSERT_CONFLICTS
from shared.schemas import Bar
from shared.validation import decode_bar

logger = logging.getLogger(__name__)
_new_tuple = tuple.__new__

SeriesKey = tuple[str, str]
# A partition's state: its series by (symbol, interval).
PartitionSeries = dict[SeriesKey, StoredSeries]


@dataclass
class IndicatorEffects:
    """What a batch writes: indicator rows, the series it moved, the bars older than their
    series' newest (duplicates or late: told apart against the table by the store)."""

    rows: list[store.IndicatorRow] = field(default_factory=list)
    touched: dict[SeriesKey, StoredSeries] = field(default_factory=dict)
    packed: dict[SeriesKey, store.PackedSeries] = field(default_factory=dict)  # touched, stored
    older: list[tuple[Bar, datetime]] = field(default_factory=list)
    repeats: int = 0
    alerts: list[AlertRow] = field(default_factory=list)
    alert_created_ms: list[int] = field(
        default_factory=list
    )  # each alert's bar's CreateTime  # inserted last (Handler.finish)
    swept: str | None = None  # a sweep's rules version (see Handler.sweep_due)


class AnalyticsHandler(Handler):
    # The next batch is computed while PostgreSQL inserts this one (shared/loop/flight.py):
    # `write` keeps its own choice of write (`_direct_copies`), which `process` never reads.
    pipelined = True
    # Copying each series a batch touches, then freeing the copy it replaces, was a sixth of the
    # consumer's CPU at 2,000 bars/s (py-spy: about one copy per bar at a steady rate).
    in_place = True

    def __init__(
        self,
        group: str,
        params: IndicatorParams,
        params_id: int,
        exchange: str,
        rules: RulesInForce,
        historical_age_s: float,
    ) -> None:
        """`params_id` is the committed id of `params` (see store.params_id)."""
        self._group = group
        self._params = params
        self._params_id = params_id
        self._exchange = exchange
        self._rules = rules
        self._historical_age_s = historical_age_s
        self._sweeps = ReloadSweeps(rules)
        self._direct_copies = DirectCopies()  # see write

    def decode(self, message: Message) -> Bar:
        return decode_bar(message.value())

    def load(
        self, conn: psycopg.Connection, partitions: Sequence[PartitionKey]
    ) -> dict[PartitionKey, PartitionSeries]:
        states: dict[PartitionKey, PartitionSeries] = {key: {} for key in partitions}
        by_number = {key[1]: key for key in partitions}  # one topic: market.bars
        loaded = store.load_states(conn, self._group, sorted(by_number))
        for series_key, series in loaded.items():
            states[by_number[series.kafka_partition]][series_key] = series
        self._sweeps.loaded(series.alerts for series in loaded.values())
        stale = sum(1 for s in loaded.values() if s.state.indicators.params != self._params)
        if stale:
            logger.warning(
                "%d series keep the periods they were computed with; "
                "`python -m analytics.recompute --all` moves them to the configured ones",
                stale,
            )
        return states

    def process(
        self,
        records: Sequence[Record],
        states: Mapping[PartitionKey, PartitionSeries | None],
        *,
        in_place: bool = False,
    ) -> Effects:
        rules = self._rules.current()  # a reload asked for by SIGHUP takes effect here
        if not records and self._sweeps.sweeping is not None:
            return self._sweep(rules, states)
        out = IndicatorEffects()
        new_states: dict[PartitionKey, PartitionSeries] = {}
        for record in records:
            bar: Bar = record.value
            partition_key = (record.topic, record.partition)
            series_map = new_states.get(partition_key)
            if series_map is None:
                series_map = new_states[partition_key] = dict(states.get(partition_key) or {})
            key = (bar.symbol, bar.interval)
            series = out.touched.get(key)
            if series is None:
                committed = series_map.get(key)
                if committed is None:
                    state = SeriesState.new(
                        self._params, annualization_factor(bar.interval, self._exchange)
                    )
                    series = StoredSeries(state, record.partition, 0, self._params_id)
                else:
                    series = committed if in_place else committed.copy()
            newest = series.state.last_ts
            if newest is not None and bar.ts <= newest:
                # The newest bar again is a duplicate; an older one is sorted out by the store.
                if bar.ts == newest:
                    out.repeats += 1
                else:
                    out.older.append((bar, newest))
                continue
            values = series.state.feed(bar.ts, bar.close, bar.split_basis)
            out.rows.append(
                store.indicator_row(
                    bar.symbol,
                    bar.interval,
                    bar.ts,
                    values,
                    series.params_id,
                    series.state.split_basis,
                )
            )
            # tuple.__new__: BarFacts(...) goes through namedtuple's generated __new__, a
            # frame more for every bar.
            facts = _new_tuple(
                BarFacts,
                (bar.symbol, bar.interval, bar.ts, bar.close, bar.volume, bar.split_basis, values),
            )
            transitions = evaluate(rules, series.alerts, facts)
            if transitions:
                historical = is_historical(
                    bar.interval,
                    bar.ts,
                    bar.fetched_at,
                    record.timestamp_ms,
                    self._historical_age_s,
                )
                out.alerts.extend(alert_rows(transitions, historical))
                out.alert_created_ms.extend([record.timestamp_ms] * len(transitions))
            series.kafka_partition = record.partition
            series_map[key] = out.touched[key] = series
        # Packed here, not in `write`: the next batch is computed while this one is written, and
        # the writer thread is the one a batch's latency waits on.
        out.packed = store.pack_states(out.touched)
        return Effects(rows=out, states=new_states)

    def write(self, conn: psycopg.Connection, effects: Effects) -> None:
        out: IndicatorEffects = effects.rows
        # Straight in at any size: the staging way is an INSERT … ON CONFLICT through every
        # partition and index, more than a COPY even for ten rows (in bench.e2e the staging way
        # was 72 µs of PostgreSQL's time a row, the direct COPY 23). First in the transaction,
        # so a batch written again (its COPY met a stored row) redoes no more.
        with self._direct_copies.attempt("indicators") as direct:
            written = store.write_indicators(conn, out.rows, direct=direct)
        self._direct_copies.written(met_stored=written < len(out.rows))
        # Rows are counted before COMMIT: a batch rolled back and redone is counted again.
        ROWS_WRITTEN.labels("indicators").inc(written)
        UPSERT_CONFLICTS.labels("indicators").inc(len(out.rows) - written)
        repeats = out.repeats
        if out.older:
            repeats += self._sort_out_older(conn, out.older)
        BARS_SKIPPED.labels("duplicate").inc(repeats)
        store.save_states(conn, self._group, out.packed)

    def sweep_due(self) -> bool:
        """After a rules reload (or a load that found machines of replaced rules): resolve the
        orphaned machines of every loaded series now, not on their series' next bar."""
        return self._sweeps.due()

    def _sweep(
        self, rules: RuleSet, states: Mapping[PartitionKey, PartitionSeries | None]
    ) -> Effects:
        swept = sweep(rules, states, lambda series: series.state.last_ts)
        out = IndicatorEffects(
            touched=swept.series,
            packed=store.pack_states(swept.series),
            alerts=swept.rows,
            swept=rules.version,
        )
        if swept.rows:
            logger.info(
                "rules %s: %d alert(s) resolved by the reload", rules.version, len(swept.rows)
            )
        return Effects(rows=out, states=swept.states)

    def committed(self, effects: Effects, committed_at_ms: float) -> None:
        self._sweeps.committed(effects.rows.swept)
        for created_ms in effects.rows.alert_created_ms:
            ALERT_COMMIT_LATENCY.labels("analytics").observe((committed_at_ms - created_ms) / 1000)

    def finish(self, conn: psycopg.Connection, effects: Effects) -> None:
        """Alert events last: their advisory lock is held only until this COMMIT."""
        insert_alert_events(conn, effects.rows.alerts)

    def _sort_out_older(self, conn: psycopg.Connection, older: list[tuple[Bar, datetime]]) -> int:
        """A bar before its series' newest was either fed already (a duplicate) or arrives late:
        late bars are kept in `late_bars` and not fed. Returns the number of duplicates."""
        fed = store.existing_keys(conn, [(bar.symbol, bar.interval, bar.ts) for bar, _ in older])
        late = [
            (bar.symbol, bar.interval, bar.ts, newest, bar.event_id)
            for bar, newest in older
            if (bar.symbol, bar.interval, bar.ts) not in fed
        ]
        if late:
            store.insert_late_bars(conn, self._group, late)
            BARS_SKIPPED.labels("late").inc(len(late))
        return len(older) - len(late)
