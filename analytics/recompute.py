"""`python -m analytics.recompute`: rebuild a series' indicators and state from stored bars.

For after a backfill that extends history backwards (late bars the live state never saw) or a
change of periods. The series' alert machines are evaluated again over the recomputed
indicators; where one ends in another state than the live one, an event moves it there, marked
historical (never sent to a webhook or Alertmanager).

Safe while the analytics consumer runs. Fencing: one transaction locks the series'
`analytics_state` row (FOR UPDATE), recomputes over `price_bars_adjusted` up to the
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
from analytics.alerts.engine import BarFacts
from analytics.alerts.live import alert_rows, rebuild
from analytics.alerts.rules import RuleError, RuleSet, load_rules
from analytics.alerts.store import insert_alert_events
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
    rules: RuleSet | None = None,
) -> tuple[int, int, int]:
    """Recompute one series in one transaction: (bars read, rows written, new revision).

    With `rules`, the series' alert machines are evaluated afresh over the recomputed
    indicators too, and the events that move each stored machine to its recomputed state are
    inserted, historical (analytics.alerts.live.rebuild), as the transaction's last statement
    (the alert ids' advisory lock). Without, the machines stay as they are."""
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
        facts = []
        bars = store.adjusted_closes(conn, symbol, interval, last_ts)
        for ts, close, split_basis, volume in bars:
            values = state.feed(ts, close, split_basis)
            if since is None or ts >= since:
                rows.append(
                    store.indicator_row(symbol, interval, ts, values, params_id, split_basis)
                )
            if rules is not None:
                facts.append(BarFacts.of(symbol, interval, ts, close, volume, split_basis, values))
        written = store.write_indicators(conn, rows, replace=True)
        if rules is None:
            revision = store.replace_state(conn, group, symbol, interval, state)
        else:
            old = store.stored_alerts(conn, group, symbol, interval)
            alerts, changes = rebuild(rules, old, facts, symbol, interval, last_ts)
            revision = store.replace_state(conn, group, symbol, interval, state, alerts)
            insert_alert_events(conn, alert_rows(changes, historical=True))
    return len(bars), written, revision


def wait_for_storage(
    conn: psycopg.Connection,
    group: str,
    symbol: str,
    interval: str,
    timeout_s: float,
    also: datetime | None = None,
) -> None:
    """Wait (without holding any lock) until price_bars has the series' newest fed bar, and the
    bar at `also` (a backfill's newest bar: storage writes a series in order, so with it every
    backfilled bar is there)."""
    deadline = time.monotonic() + timeout_s
    while True:
        last_ts = store.last_ts(conn, group, symbol, interval)
        present = last_ts is None or store.has_bar(conn, symbol, interval, last_ts)
        present = present and (also is None or store.has_bar(conn, symbol, interval, also))
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
        "--wait-for-bar",
        type=datetime.fromisoformat,
        help="also wait until price_bars has this bar of the series (ISO 8601 with offset):"
        " `python -m producer.market backfill` passes its newest backfilled bar",
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
    if args.wait_for_bar is not None and (args.all or args.wait_for_bar.tzinfo is None):
        parser.error("--wait-for-bar needs --symbol and a UTC offset")
    if args.since is not None and args.since.tzinfo is None:
        parser.error("--from needs a UTC offset, e.g. 2024-01-02T00:00:00+00:00")
    configure_logging("analytics.recompute")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"analytics.recompute: {exc}", file=sys.stderr)
        return 2
    try:
        rules = load_rules(settings.alert_rules.rules_path)
    except (RuleError, OSError) as exc:
        print(
            f"analytics.recompute: invalid setting "
            f"ALERT_RULES_PATH={settings.alert_rules.rules_path}: {exc}",
            file=sys.stderr,
        )
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
            wait_for_storage(conn, group, symbol, interval, args.wait_s, args.wait_for_bar)
            try:
                bars, written, revision = recompute_series(
                    conn,
                    group,
                    symbol,
                    interval,
                    params,
                    settings.analytics.exchange,
                    args.since,
                    rules,
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
