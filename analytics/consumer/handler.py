"""The analytics consumer's handler: bars in, one indicators row per bar, exact state per series."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import psycopg
from confluent_kafka import Message

from analytics import store
from analytics.indicators import IndicatorParams, annualization_factor
from analytics.series import SeriesState
from analytics.store import StoredSeries
from shared.consumer_handler import Handler, Record
from shared.metrics import BARS_SKIPPED, ROWS_WRITTEN, UPSERT_CONFLICTS
from shared.schemas import Bar, decode
from shared.validation import validate_bar

logger = logging.getLogger(__name__)


class AnalyticsHandler(Handler):
    """Keeps the states of the series in the partitions this member owns.

    In memory a state may run ahead of the database while a batch is being written; the loop
    calls `load` whenever that batch did not commit, so memory never drifts from what is stored.
    """

    def __init__(self, group: str, params: IndicatorParams, params_id: int, exchange: str) -> None:
        """`params_id` is the committed id of `params` (see store.params_id)."""
        self._group = group
        self._params = params
        self._params_id = params_id
        self._exchange = exchange
        self._series: dict[tuple[str, str], StoredSeries] = {}

    def decode(self, message: Message) -> Bar:
        bar = decode(message.value(), Bar)
        validate_bar(bar)
        return bar

    def load(self, conn: psycopg.Connection, partitions: Sequence[tuple[str, int]]) -> None:
        numbers = {partition for _topic, partition in partitions}
        self._drop(numbers)
        loaded = store.load_states(conn, self._group, sorted(numbers))
        self._series.update(loaded)
        stale = sum(1 for s in loaded.values() if s.state.indicators.params != self._params)
        if stale:
            logger.warning(
                "%d series keep the periods they were computed with; "
                "`python -m analytics.recompute --all` moves them to the configured ones",
                stale,
            )

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        self._drop({partition for _topic, partition in partitions})

    def _drop(self, partitions: set[int]) -> None:
        for key in [k for k, s in self._series.items() if s.kafka_partition in partitions]:
            del self._series[key]

    def write(self, conn: psycopg.Connection, records: Sequence[Record]) -> None:
        rows: list[store.IndicatorRow] = []
        touched: dict[tuple[str, str], StoredSeries] = {}
        older: list[tuple[Bar, datetime]] = []
        # Series restored with periods other than the configured ones keep theirs (and their
        # id) until recomputed; those ids are looked up in this batch's transaction.
        other_params_ids: dict[IndicatorParams, int] = {}
        repeats = 0
        for record in records:
            bar: Bar = record.value
            key = (bar.symbol, bar.interval)
            series = self._series.get(key)
            if series is None:
                state = SeriesState.new(
                    self._params, annualization_factor(bar.interval, self._exchange)
                )
                series = self._series[key] = StoredSeries(state, record.partition)
            newest = series.state.last_ts
            if newest is not None and bar.ts <= newest:
                # The newest bar again is a duplicate; an older one is sorted out below.
                if bar.ts == newest:
                    repeats += 1
                else:
                    older.append((bar, newest))
                continue
            values = series.state.feed(bar.ts, bar.close, bar.split_basis)
            params = series.state.indicators.params
            if params is self._params or params == self._params:  # `is`: the usual, cheap case
                params_id = self._params_id
            elif (params_id := other_params_ids.get(params)) is None:
                params_id = other_params_ids[params] = store.params_id(conn, params)
            rows.append(store.indicator_row(bar.symbol, bar.interval, bar.ts, values, params_id))
            series.kafka_partition = record.partition
            touched[key] = series
        written = store.write_indicators(conn, rows)
        # Rows are counted before COMMIT: a batch rolled back and redone is counted again.
        ROWS_WRITTEN.labels("indicators").inc(written)
        UPSERT_CONFLICTS.labels("indicators").inc(len(rows) - written)
        if older:
            repeats += self._sort_out_older(conn, older)
        BARS_SKIPPED.labels("duplicate").inc(repeats)
        store.save_states(conn, self._group, touched)

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
