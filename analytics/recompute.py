"""`python -m analytics.recompute`: rebuild a series' indicators and state from stored bars.

For after a backfill that extends history backwards (late bars the live state never saw) or a
change of periods. Safe while the analytics consumer runs. Fencing: one transaction locks the
series' `analytics_state` row (FOR UPDATE), recomputes over `price_bars_adjusted` up to the
state's `last_ts`, replaces the indicators rows and the state, and bumps the state's `revision`.
The consumer writes a state only as a compare-and-set on the revision it loaded, so a batch of
it that computed on the old state finds the revision moved, writes nothing and is rolled back;
it then reloads the recomputed state and redoes the batch from its stored offsets.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from datetime import datetime

import psycopg

from analytics import store
from analytics.consumer.service import configured_params
from analytics.indicators import IndicatorParams, annualization_factor
from analytics.series import SeriesState
from shared.errors import RecomputeError, SettingsError
from shared.service import configure_logging
from shared.settings import load_settings

logger = logging.getLogger("analytics.recompute")


def recompute_series(
    conn: psycopg.Connection,
    group: str,
    symbol: str,
    interval: str,
    params: IndicatorParams,
    exchange: str,
    since: datetime | None,
) -> tuple[int, int, int]:
    """Recompute one series in one transaction: (bars read, rows written, new revision)."""
    store.prepare_connection(conn)
    with conn.transaction():
        last_ts = store.lock_state(conn, group, symbol, interval)
        if last_ts is None:
            raise RecomputeError(
                f"{symbol}/{interval}: the analytics consumer (group {group!r}) has no state for"
                " it yet; it computes a new series from its first bar, nothing to recompute"
            )
        if not store.has_bar(conn, symbol, interval, last_ts):
            raise RecomputeError(
                f"{symbol}/{interval}: price_bars has no bar at {last_ts.isoformat()} yet"
                " (the storage consumer is behind the analytics consumer)"
            )
        state = SeriesState.new(params, annualization_factor(interval, exchange))
        params_id = store.params_id(conn, params)
        rows = []
        bars = store.adjusted_closes(conn, symbol, interval, last_ts)
        for ts, close, split_basis in bars:
            values = state.feed(ts, close, split_basis)
            if since is None or ts >= since:
                rows.append(
                    store.indicator_row(symbol, interval, ts, values, params_id, split_basis)
                )
        written = store.write_indicators(conn, rows, replace=True)
        revision = store.replace_state(conn, group, symbol, interval, state)
    return len(bars), written, revision


def wait_for_storage(
    conn: psycopg.Connection, group: str, symbol: str, interval: str, timeout_s: float
) -> None:
    """Wait (without holding any lock) until price_bars has the series' newest fed bar."""
    deadline = time.monotonic() + timeout_s
    while True:
        last_ts = store.last_ts(conn, group, symbol, interval)
        present = last_ts is None or store.has_bar(conn, symbol, interval, last_ts)
        conn.commit()  # no snapshot or lock held while waiting
        if present or time.monotonic() >= deadline:
            return  # (no state: recompute_series explains)
        logger.info("%s/%s: waiting for storage to reach %s", symbol, interval, last_ts)
        time.sleep(1.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analytics.recompute", description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--symbol", help="the series' symbol (with --interval)")
    which.add_argument("--all", action="store_true", help="every series the consumer has")
    parser.add_argument("--interval", help="the series' bar interval, e.g. 1d or 1m")
    parser.add_argument(
        "--from",
        dest="since",
        type=datetime.fromisoformat,
        help="rewrite indicators rows from this timestamp on (ISO 8601 with offset);"
        " the state is always rebuilt from the first bar",
    )
    parser.add_argument(
        "--wait-s",
        type=float,
        default=60.0,
        help="how long to wait for the storage consumer to catch up (default 60)",
    )
    args = parser.parse_args(argv)
    if args.symbol and not args.interval:
        parser.error("--symbol needs --interval")
    if args.since is not None and args.since.tzinfo is None:
        parser.error("--from needs a UTC offset, e.g. 2024-01-02T00:00:00+00:00")
    configure_logging("analytics.recompute")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"analytics.recompute: {exc}", file=sys.stderr)
        return 2
    group = settings.consumer.group_analytics
    params = configured_params(settings.analytics)
    failures = 0
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        if args.all:
            series = store.series_of(conn, group)
            conn.commit()
        else:
            series = [(args.symbol, args.interval)]
        for number, (symbol, interval) in enumerate(series, 1):
            wait_for_storage(conn, group, symbol, interval, args.wait_s)
            try:
                bars, written, revision = recompute_series(
                    conn, group, symbol, interval, params, settings.analytics.exchange, args.since
                )
            except RecomputeError as exc:
                failures += 1
                logger.error("[%d/%d] %s", number, len(series), exc)
                continue
            logger.info(
                "[%d/%d] %s/%s: %d bars, %d indicators rows written, state revision %d",
                number,
                len(series),
                symbol,
                interval,
                bars,
                written,
                revision,
            )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
