"""The analytics consumer in tests: run it in a thread, wait for it, compare its rows."""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime

import psycopg

from analytics.consumer.service import SERVICE, configured_params, run
from analytics.indicators import annualization_factor
from analytics.series import SeriesState
from shared.kafka import topics_for
from shared.schemas import Bar
from shared.settings import Settings
from tests.integration.bar_stream import drained
from tests.integration.processes import wait_for
from tests.integration.storage_thread import in_thread

VALUE_COLUMNS = (
    "sma_fast",
    "sma_slow",
    "ema_fast",
    "ema_slow",
    "rsi",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_lower",
    "bb_middle",
    "bb_upper",
    "volatility",
)
SeriesKey = tuple[str, str, datetime]
Rows = dict[SeriesKey, tuple[float | None, ...]]


def analytics_running(settings: Settings) -> AbstractContextManager[None]:
    """Run analytics.consumer in a thread until the block ends."""
    return in_thread(SERVICE, run, settings)


def wait_analyzed(settings: Settings, timeout: float = 90) -> None:
    """Until the analytics group's stored offsets reach the end of market.bars."""
    topic = topics_for(settings.kafka).market_bars
    group = settings.consumer.group_analytics
    wait_for(
        lambda: drained(settings.postgres, settings.kafka, group, topic),
        timeout,
        "analytics to drain market.bars",
    )


def stored_indicators(settings: Settings) -> Rows:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        rows = conn.execute(
            f"SELECT symbol, interval, ts, {', '.join(VALUE_COLUMNS)} FROM indicators"  # noqa: S608 - constant column list
        ).fetchall()
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


def uninterrupted(settings: Settings, bars: Iterable[Bar]) -> Rows:
    """What one consumer that never stops computes: each series fed in publish order, newer
    bars only (a repeat or an older bar is not fed), independently of the service's code path."""
    params = configured_params(settings.analytics)
    states: dict[tuple[str, str], SeriesState] = {}
    rows: Rows = {}
    for bar in bars:
        key = (bar.symbol, bar.interval)
        state = states.get(key)
        if state is None:
            factor = annualization_factor(bar.interval, settings.analytics.exchange)
            state = states[key] = SeriesState.new(params, factor)
        if state.last_ts is not None and bar.ts <= state.last_ts:
            continue
        values = state.feed(bar.ts, bar.close, bar.split_basis)
        rows[(bar.symbol, bar.interval, bar.ts)] = tuple(getattr(values, c) for c in VALUE_COLUMNS)
    return rows


def assert_rows_equal(actual: Rows, expected: Rows, rel: float = 1e-12) -> None:
    assert actual.keys() == expected.keys(), (
        f"missing {sorted(expected.keys() - actual.keys())[:3]},"
        f" unexpected {sorted(actual.keys() - expected.keys())[:3]}"
    )
    for key, want in expected.items():
        for column, a, b in zip(VALUE_COLUMNS, actual[key], want, strict=True):
            if b is None or a is None:
                assert a is None and b is None, f"{key} {column}: {a} vs {b}"
            else:
                assert math.isclose(a, b, rel_tol=rel, abs_tol=rel), f"{key} {column}: {a} vs {b}"


def stored_states(settings: Settings) -> dict[tuple[str, str], datetime]:
    """last_ts of each series in analytics_state for the analytics group."""
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        rows = conn.execute(
            "SELECT symbol, interval, last_ts FROM analytics_state WHERE consumer_group = %s",
            (settings.consumer.group_analytics,),
        ).fetchall()
    return {(symbol, interval): last_ts for symbol, interval, last_ts in rows}


def newest_per_series(keys: Iterable[SeriesKey]) -> dict[tuple[str, str], datetime]:
    newest: dict[tuple[str, str], datetime] = {}
    for symbol, interval, ts in keys:
        key = (symbol, interval)
        if key not in newest or ts > newest[key]:
            newest[key] = ts
    return newest


def assert_states_match_rows(settings: Settings) -> None:
    """What is committed is consistent: one state per series with rows, at its newest row."""
    assert stored_states(settings) == newest_per_series(stored_indicators(settings))
