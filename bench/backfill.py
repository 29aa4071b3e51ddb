"""Backfill bench: a year of hourly bars through storage and analytics, timed until drained.

`python -m bench.backfill` (full: 100 symbols × 252 XNYS sessions × their hourly bars, about
176,000 bars) or `--smoke`. The bars (random walk, source 'bench') are in market.bars before
the services start, as after a producer's first start; the months they cover are partitioned
beforehand, as upkeep does for live data. Prints name=value:

- `seconds`: from starting consumer.storage and analytics.consumer (their processes, so
  start-up and the group join are included) until both groups have committed every bar;
  `bars_per_s` = bars / seconds; `storage_seconds` / `analytics_seconds` each group alone.
  Indicators are included (one indicators row per bar, checked), alert rules too (the default
  rules file; a backfill's alerts are historical).
- With `--forecasts`: forecasts separately, because a year of hourly bars is thousands of
  origins per symbol-year and fits are CPU-bound work of their own (DESIGN.md: the forecaster
  lags rather than drops work): analytics.forecaster started after the other two finished,
  over the same topic; `forecast_seconds` until its group is drained, `forecast_origins`.
"""

from __future__ import annotations

import argparse
import time
from datetime import date, datetime, timedelta

import psycopg

from bench.delivery import publish_steady, wait_drained
from bench.forecast_service import random_walk
from bench.harness import (
    BenchTarget,
    Service,
    emit,
    emit_settings,
    fresh_target,
    stop_all,
)
from db.bootstrap import bootstrap
from db.partitions import ensure_range
from shared.calendar import get_calendar
from shared.settings import RetentionSettings

FIRST_DAY = date(2024, 1, 2)


def hourly_stamps(sessions: int) -> list[datetime]:
    """Yahoo's hourly grid: each XNYS session's open, then every hour before its close."""
    calendar = get_calendar("XNYS")
    stamps: list[datetime] = []
    day, found = FIRST_DAY, 0
    while found < sessions:
        session = calendar.session(day)
        if session is not None:
            found += 1
            ts = session.open
            while ts < session.close:
                stamps.append(ts)
                ts += timedelta(hours=1)
        day += timedelta(days=1)
    return stamps


def prepare_partitions(target: BenchTarget, first: datetime, last: datetime) -> None:
    with psycopg.connect(target.postgres.conninfo(), autocommit=True) as conn:
        for table, interval in (("price_bars", "1h"), ("indicators", "1h"), ("forecasts", None)):
            ensure_range(conn, RetentionSettings(), table, interval, first, last)
    bootstrap(target.postgres, target.postgres.dbname)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for make test")
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=252, help="XNYS sessions of hourly bars")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--forecasts", action="store_true", help="then time the forecaster")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    if args.smoke:
        args.symbols, args.sessions = 10, 20
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    stamps = hourly_stamps(args.sessions)
    messages = random_walk(args.symbols, stamps, "1h", seed=7)
    with fresh_target("backfill") as target:
        prepare_partitions(target, stamps[0], stamps[-1] + timedelta(hours=1))
        emit_settings(
            target,
            symbols=args.symbols,
            sessions=args.sessions,
            interval="1h",
            bars=len(messages),
            batch_size=args.batch_size,
        )
        deliveries = publish_steady(target, messages, None)
        if deliveries.failed or deliveries.confirmed != len(messages):
            raise SystemExit(f"bench.backfill: bars not delivered: {deliveries.first_error}")

        batch = {"CONSUMER_BATCH_SIZE": str(args.batch_size)}
        started = time.monotonic()
        storage = Service("consumer.storage", target, **batch)
        analytics = Service("analytics.consumer", target, **batch)
        groups = {"storage": storage.group("storage"), "analytics": analytics.group("analytics")}
        try:
            waited_from = time.monotonic() - started
            drained = wait_drained(target, list(groups.values()), args.timeout)
            seconds = time.monotonic() - started
        finally:
            stop_all((storage, analytics))
        emit("seconds", seconds)
        emit("bars_per_s", len(messages) / seconds)
        for name, group in groups.items():
            emit(f"{name}_seconds", waited_from + drained[group])
        check_rows(target, len(messages))
        if args.forecasts:
            forecast(target, args)
    return 0


def check_rows(target: BenchTarget, bars: int) -> None:
    """Every bar stored once and turned into one indicators row."""
    with psycopg.connect(target.postgres.conninfo()) as conn:
        price_rows, indicator_rows = conn.execute(
            "SELECT (SELECT count(*) FROM price_bars), (SELECT count(*) FROM indicators)"
        ).fetchone()
    emit("price_bars_rows", price_rows)
    emit("indicators_rows", indicator_rows)
    if (price_rows, indicator_rows) != (bars, bars):
        raise SystemExit(f"bench.backfill: expected {bars} rows in price_bars and indicators")


def forecast(target: BenchTarget, args: argparse.Namespace) -> None:
    started = time.monotonic()
    forecaster = Service("analytics.forecaster", target, CONSUMER_BATCH_SIZE=str(args.batch_size))
    try:
        wait_drained(target, [forecaster.group("forecaster")], args.timeout)
        seconds = time.monotonic() - started
        fits = int(sum(v for _, v in forecaster.metrics().get("pipeline_forecast_fits_total", [])))
    finally:
        forecaster.stop()
    emit("forecast_seconds", seconds)
    emit("forecast_origins", fits)
    emit("forecast_origins_per_s", fits / seconds)


if __name__ == "__main__":
    raise SystemExit(main())
