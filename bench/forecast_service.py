"""The forecaster service under load (used by `python -m bench.forecast`): a backfill of daily
bars for many symbols, and the CPU a live stream of one-minute bars costs.

- `backfill_s`: one year of daily bars × N symbols pre-filled in market.bars, the forecaster
  started: seconds from its assignment until every bar is committed (every origin fitted).
- `live_cpu_share`: symbols × one-minute bars in real time. Replaying 30 minutes of bars as fast
  as the service takes them, the CPU seconds of the service and its fit workers are measured and
  spread over the 30 minutes those bars cover in real time, plus the service's idle CPU rate
  (polling, metrics) measured before. The share of one core it would use live.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bench.harness import BenchTarget, Service, drain_rate, emit, make_producer, produce_all
from bench.processes import tree_cpu_s
from shared.calendar import get_calendar
from shared.schemas import Bar, encode, event_id


def daily_sessions(first: date, count: int) -> list[datetime]:
    calendar = get_calendar("XNYS")
    days, day = [], first
    while len(days) < count:
        if calendar.session(day) is not None:
            days.append(datetime(day.year, day.month, day.day, tzinfo=UTC))
        day += timedelta(days=1)
    return days


# The forecaster's cadence in the latency benches (bench.alerts, bench.e2e): at 2,000 bars/s,
# 10 fits/s, six times what 500 live one-minute series ask at FORECAST_EVERY=5 (500/60/5). The
# bench's bars come 240 times faster than real time: the live default would ask 400 fits/s.
LATENCY_FORECAST_EVERY = 200


def add_cadence_arguments(parser: argparse.ArgumentParser) -> None:
    """--forecast-every and --no-stagger, as the latency benches take them."""
    parser.add_argument(
        "--forecast-every",
        type=int,
        default=LATENCY_FORECAST_EVERY,
        help="FORECAST_EVERY of the forecaster",
    )
    parser.add_argument(
        "--no-stagger",
        dest="stagger",
        action="store_false",
        help="every symbol on one grid (origins of all series at once)",
    )


def phase_offsets(symbols: int, every: int, stagger: bool) -> list[timedelta]:
    """Symbol i's one-minute grid starts `i mod every` minutes late when staggered: each minute,
    1/every of the series reach an origin (a steady fit demand, not a burst every `every`)."""
    return [timedelta(minutes=(i % every) if stagger else 0) for i in range(symbols)]


@dataclass(frozen=True)
class SteadyLoad:
    """A latency bench's bars: `warm` (published before the services start) and `live` (the
    steady phase), one-minute random walks from `start` on each symbol's phase."""

    warm: list[tuple[bytes, bytes]]
    live: list[tuple[bytes, bytes]]
    last_ts: datetime  # the newest bar's time
    settings: dict[str, object]  # what the bench prints with its settings

    @classmethod
    def of(cls, args: argparse.Namespace, start: datetime, seed: int) -> SteadyLoad:
        """From the bench's --symbols, --rate, --seconds, --warm and cadence arguments."""
        per_symbol = max(1, int(args.rate * args.seconds) // args.symbols)
        stamps = [start + timedelta(minutes=i) for i in range(args.warm + per_symbol)]
        offsets = phase_offsets(args.symbols, args.forecast_every, args.stagger)
        messages = random_walk(args.symbols, stamps, "1m", seed=seed, offsets=offsets)
        split = args.symbols * args.warm
        settings = {
            "symbols": args.symbols,
            "rate": args.rate,
            "seconds": args.seconds,
            "forecast_every": args.forecast_every,
            "stagger": args.stagger,
        }
        return cls(messages[:split], messages[split:], stamps[-1] + max(offsets), settings)


def random_walk(
    symbols: int,
    stamps: list[datetime],
    interval: str,
    seed: int,
    offsets: list[timedelta] | None = None,
) -> list[tuple[bytes, bytes]]:
    """Synthetic bars (source 'bench', never mixed with real data), in time order. `offsets`:
    symbol i's bars are stamped `offsets[i]` after `stamps` (a phase of its own)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible bench prices, not secrets
    closes = [rng.uniform(20, 500) for _ in range(symbols)]
    fetched_at = datetime.now(UTC)
    messages = []
    for stamp in stamps:
        for s in range(symbols):
            symbol = f"B{s:04d}"
            ts = stamp + offsets[s] if offsets else stamp
            open_ = closes[s]
            close = open_ * math.exp(rng.gauss(0.0, 0.015))
            closes[s] = close
            bar = Bar(
                event_id=event_id("bench", symbol, interval, ts),
                source="bench",
                symbol=symbol,
                interval=interval,
                ts=ts,
                open=open_,
                high=max(open_, close) * 1.002,
                low=min(open_, close) * 0.998,
                close=close,
                adj_close=None,
                volume=1000,
                fetched_at=fetched_at,
            )
            messages.append((symbol.encode(), encode(bar)))
    return messages


def publish(target: BenchTarget, messages: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(target.kafka, "bench-forecast")
    produce_all(producer, target.topics.market_bars, messages)
    producer.flush(60)


def measure_backfill(target: BenchTarget, symbols: int, sessions: int, workers: int) -> None:
    stamps = daily_sessions(date(2024, 1, 2), sessions)
    messages = random_walk(symbols, stamps, "1d", seed=1)
    publish(target, messages)
    service = Service(
        "analytics.forecaster", target, FORECAST_WORKERS=str(workers), CONSUMER_BATCH_SIZE="5000"
    )
    try:
        service.wait_ready()
        started = time.monotonic()
        drain_rate(target, len(messages), timeout=1800)
        emit("backfill_symbols", symbols)
        emit("backfill_sessions", sessions)
        emit("backfill_bars", len(messages))
        emit("backfill_origins", origins_of(service))
        emit("backfill_s", time.monotonic() - started)
    finally:
        service.stop()


def origins_of(service: Service) -> int:
    return int(sum(v for _, v in service.metrics().get("pipeline_forecast_fits_total", [])))


def measure_live(
    target: BenchTarget, symbols: int, warm_minutes: int, minutes: int, workers: int, done: int
) -> None:
    """`done`: messages already on the topic (the backfill's)."""
    start = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)  # a Monday's open (XNYS)
    stamps = [start + timedelta(minutes=i) for i in range(warm_minutes + minutes)]
    messages = random_walk(symbols, stamps, "1m", seed=2)
    warm, measured = messages[: symbols * warm_minutes], messages[symbols * warm_minutes :]
    service = Service("analytics.forecaster", target, FORECAST_WORKERS=str(workers))
    try:
        service.wait_ready()
        drain_rate(target, done, timeout=1800)  # what was there before
        publish(target, warm)  # every series past FORECAST_MIN_BARS
        drain_rate(target, done + len(warm), timeout=1800)
        pid = service.process.pid
        idle_from, idle_started = tree_cpu_s(pid), time.monotonic()
        time.sleep(10)
        idle_rate = (tree_cpu_s(pid) - idle_from) / (time.monotonic() - idle_started)
        fits_before = origins_of(service)
        cpu_before, started = tree_cpu_s(pid), time.monotonic()
        publish(target, measured)
        drain_rate(target, done + len(messages), timeout=1800)
        elapsed = time.monotonic() - started
        busy = tree_cpu_s(pid) - cpu_before - idle_rate * elapsed
        emit("live_symbols", symbols)
        emit("live_minutes", minutes)
        emit("live_origins", origins_of(service) - fits_before)
        emit("live_idle_cpu_share", idle_rate)
        emit("live_cpu_share", max(0.0, busy) / (minutes * 60) + idle_rate)
    finally:
        service.stop()
