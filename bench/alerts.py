"""Alert latency bench: `python -m bench.alerts` (full) or `--smoke`. Prints name=value lines.

- The analytics consumer and the forecaster run on a fresh target with the default rules. Every
  series is first warmed with `--warm` one-minute random-walk bars (indicators past their warm-up,
  forecasts open), then `--rate` bars/s arrive for `--seconds` over `--symbols` symbols.
  `analytics_p50_latency_ms` / `analytics_p99_latency_ms` and `forecaster_…` come from each
  service's pipeline_alert_commit_latency_seconds: Kafka CreateTime of the bar that changed an
  alert's state → the COMMIT of the transaction that stored the alert.
- The forecaster's cadence is `--forecast-every` bars (default 200) and each symbol's one-minute
  grid is offset by `i mod every` minutes (`--no-stagger`: all symbols share one grid), so the
  fits the forecast-breach rule needs arrive as a steady demand: 2,000 bars/s / 200 = 10 fits/s,
  six times what the default settings ask of a live pipeline of 500 one-minute series (an
  origin every 5 bars: 500 / 60 / 5 = 1.7 fits/s). The bars arrive 240 times faster than real
  time, so the live default of every 5 bars would ask 400 fits/s (~20-50 fit here on 2 cores)
  and the forecaster's latency would be its backlog, whatever its design; with one shared grid
  the 500 series' origins fall due in the same instant (a burst of 500 fits every 25 s).
- `notify_to_watch_ms_p99`: alert events inserted by the bench itself, one per transaction, from
  the COMMIT returning to `python -m analytics.watch_alerts --json` printing them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg

from analytics.alerts.store import AlertRow, insert_alert_events
from bench.delivery import publish_steady
from bench.forecast_service import SteadyLoad, add_cadence_arguments, publish
from bench.harness import (
    ROOT,
    Service,
    drain_rate,
    emit,
    emit_settings,
    fresh_target,
    histogram_quantile,
    subtract_buckets,
)

METRIC = "pipeline_alert_commit_latency_seconds_bucket"


FIT_WAIT_METRIC = "pipeline_forecast_fit_round_seconds_bucket"


def buckets(service: Service, writer: str) -> list[tuple[dict[str, str], float]]:
    return [
        (labels, value)
        for labels, value in service.metrics().get(METRIC, [])
        if labels.get("writer") == writer
    ]


def batch_totals(service: Service) -> tuple[float, float, float, float]:
    """(batches committed, messages in them, fits, their seconds in the workers) so far: how
    the steady rate was cut into transactions (each one a COMMIT and its WAL flush), and what
    the fits asked of the machine."""
    samples = service.metrics()
    return tuple(  # type: ignore[return-value]
        sum(value for _, value in samples.get(name, []))
        for name in (
            "pipeline_batch_messages_count",
            "pipeline_batch_messages_sum",
            "pipeline_forecast_fit_duration_seconds_count",
            "pipeline_forecast_fit_duration_seconds_sum",
        )
    )


def notify_to_watch_ms(target, events: int) -> list[float]:  # noqa: ANN001
    env = {
        **os.environ,
        "KAFKA_TOPIC_PREFIX": target.kafka.topic_prefix,
        "POSTGRES_DBNAME": target.postgres.dbname,
        "LOCAL_STACK": "off",
    }
    follower = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "analytics.watch_alerts", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: dict[int, float] = {}

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            seen[int(json.loads(line)["event_id"])] = time.monotonic()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(2)  # the follower is listening
    committed: dict[int, float] = {}
    start = datetime(2030, 1, 1, tzinfo=UTC)
    with psycopg.connect(target.postgres.conninfo()) as conn:
        for i in range(events):
            row = AlertRow(
                f"{i:032x}",
                "bench",
                "bench",
                "info",
                "BENCH",
                "1m",
                "firing",
                1.0,
                0.0,
                "bench event",
                start + timedelta(minutes=i),
                True,
            )
            with conn.transaction():
                (event_id,) = insert_alert_events(conn, [row])
            committed[event_id] = time.monotonic()
            time.sleep(0.02)
    deadline = time.monotonic() + 30
    while len(seen) < events and time.monotonic() < deadline:
        time.sleep(0.05)
    follower.terminate()
    follower.wait(10)
    return [1000 * (seen[i] - committed[i]) for i in committed if i in seen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warm", type=int, default=125, help="bars per symbol before the run")
    add_cadence_arguments(parser)
    args = parser.parse_args()
    if args.smoke:
        # The full run's fit demand (10 fits/s) at a tenth of its rate.
        args.symbols, args.rate, args.seconds, args.warm = 20, 200, 3.0, 125
        args.forecast_every = 20
    load = SteadyLoad.of(args, datetime(2025, 3, 3, 14, 30, tzinfo=UTC), seed=4)
    warm, live = load.warm, load.live
    with fresh_target("alerts") as target:
        emit_settings(target, **load.settings)
        publish(target, warm)
        analytics = Service("analytics.consumer", target)
        forecaster = Service(
            "analytics.forecaster", target, FORECAST_EVERY=str(args.forecast_every)
        )
        try:
            analytics.wait_ready()
            forecaster.wait_ready()
            # Both groups past the warm-up (two groups: twice the messages in consumer_offsets).
            drain_rate(target, 2 * len(warm), timeout=1800)
            for service in (analytics, forecaster):
                service.wait_counted(len(warm))
            before = {
                w: buckets(s, w) for w, s in (("analytics", analytics), ("forecaster", forecaster))
            }
            waits_before = forecaster.metrics().get(FIT_WAIT_METRIC, [])
            totals = {
                w: batch_totals(s)
                for w, s in (("analytics", analytics), ("forecaster", forecaster))
            }
            started = time.monotonic()
            publish_steady(target, live, args.rate)
            elapsed = time.monotonic() - started
            drain_rate(target, 2 * (len(warm) + len(live)), timeout=1800)
            for service in (analytics, forecaster):
                service.wait_counted(len(warm) + len(live))
            for writer, service in (("analytics", analytics), ("forecaster", forecaster)):
                after = buckets(service, writer)
                delta = subtract_buckets(after, before[writer])
                emit(f"{writer}_alerts", int(max((count for _, count in delta), default=0)))
                emit(f"{writer}_p50_latency_ms", 1000 * histogram_quantile(delta, 0.50))
                emit(f"{writer}_p99_latency_ms", 1000 * histogram_quantile(delta, 0.99))
                batches, messages, fits, fit_s = (
                    a - b for a, b in zip(batch_totals(service), totals[writer], strict=True)
                )
                emit(f"{writer}_batches_per_s", batches / elapsed)
                emit(f"{writer}_messages_per_batch", messages / max(batches, 1))
                if fits:
                    emit(f"{writer}_fits_per_s", fits / elapsed)
                    emit(f"{writer}_fit_ms_mean", 1000 * fit_s / fits)
            # How long the forecaster's batches stood waiting for fits (a pending origin's
            # outcome, or a round): a bar queued behind such a wait is a late breach check.
            waits = subtract_buckets(forecaster.metrics()[FIT_WAIT_METRIC], waits_before)
            emit("forecaster_fit_waits", int(max((count for _, count in waits), default=0)))
            emit("forecaster_fit_wait_p99_ms", 1000 * histogram_quantile(waits, 0.99))
            under = {labels["le"]: count for labels, count in waits}
            emit("forecaster_fit_waits_over_100ms", int(under["+Inf"] - under["0.1"]))
        finally:
            analytics.stop()
            forecaster.stop()
        latencies = sorted(notify_to_watch_ms(target, 50 if args.smoke else 300))
        emit("notify_events", len(latencies))
        emit("notify_to_watch_ms_p50", latencies[len(latencies) // 2])
        emit(
            "notify_to_watch_ms_p99", latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        )


if __name__ == "__main__":
    main()
