"""End-to-end bench: a load generator → market.bars → storage, analytics and forecaster.

`python -m bench.e2e` (full: 500 symbols, 2,000 bars/s for 60 s) or `--smoke`. The three run as
their own service processes on a fresh target. Every series is first warmed with `--warm`
one-minute random-walk bars (source 'bench'), published before the services start; once all three
have drained them (indicators, alert states and forecast windows warm: `warm_drain_s`, then
`forecaster_warm_drain_s`, given up to `--forecaster-grace` seconds more) the generator publishes
`--rate` bars/s straight to market.bars: `--settle` seconds unmeasured, then `--seconds` measured.
The settling part is the steady state's own start-up: a broker started just before (`make run`,
the test stack) compiles its hot code while the first minutes of load go through it, on the same
two cores, and a run straight after a start measured that (broker CPU 28 s against 15 s for the
same run later; store p99 89-93 ms against 45-50). Prints name=value:

- `p99_store_latency_ms` / `p50_…`: consumer.storage's pipeline_commit_latency_seconds over the
  steady phase, Kafka CreateTime → the COMMIT that stored the bar.
- `p99_alert_latency_ms` / `p50_…`: pipeline_alert_commit_latency_seconds of both alert writers
  together over the steady phase (CreateTime of the bar that changed an alert's state → the
  COMMIT that stored the alert); `analytics_…` and `forecaster_…` each writer alone, with their
  `_count`. The forecaster runs at `--forecast-every` 200 with staggered grids (a steady 10
  fits/s; see bench.alerts and bench.forecast_service.LATENCY_FORECAST_EVERY); at the live
  default of every 5 bars (`--forecast-every 5`: 400 fits/s) it lags by design (DESIGN.md: it
  lags rather than drops work). Either way it is given `--forecaster-grace` seconds after
  storage and analytics have drained, its alerts count as far as it got, and
  `behind_forecaster` is the lag it still had (not a loss: those messages wait in Kafka past
  its stored offsets).
- `wal_mb_per_s`, `wal_bytes_per_bar`: the WAL PostgreSQL wrote while the steady load was
  published (the whole server's: the services' writes). At 2,000 bars/s two thirds of it are
  the analytics consumer's and the forecaster's state rows, one update per series per batch.
- `storage_cpu_us_per_bar`, `analytics_…`, `forecaster_…` (its own process; its fit workers
  run apart, at idle priority), `postgres_…` (every server process on this machine): CPU time
  while the steady load was published, per bar; `machine_busy_share` and `machine_steal_share`
  (time the hypervisor gave to others): the whole machine's over the same span.
- `lost`: messages with no row (price_bars and indicators: one row per bench bar each; the
  generator's delivery reports say which messages the broker confirmed), messages storage or
  analytics has not committed (stored offsets in Postgres vs the topic's end offsets), and
  messages below the forecaster's stored offsets that its series' bar counts do not include —
  `missing_*` and `behind_*` are its parts.
- `duplicated`: messages in the topic beyond those confirmed (a producer retry that doubled
  one), rows or series counts beyond the messages, offsets stored past the end, and upsert
  conflicts in every service (a row written twice). Both must be 0: the bench exits non-zero
  otherwise.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import psycopg
from confluent_kafka.admin import AdminClient

from analytics.packed_state import state_document
from bench.delivery import (
    Deliveries,
    behind,
    below_stored,
    beyond,
    offsets_and_marks,
    publish_steady,
    wait_drained,
)
from bench.forecast_service import SteadyLoad, add_cadence_arguments
from bench.harness import (
    LATENCY_METRIC,
    BenchTarget,
    MachineTicks,
    Service,
    emit,
    emit_settings,
    fresh_target,
    histogram_quantile,
    processes_cpu_seconds,
    stop_all,
    subtract_buckets,
    wal_position,
)
from db.bootstrap import bootstrap
from db.partitions import ensure_range
from pipeline.figures import StoredOffsets, Watermarks
from shared.settings import ConsumerSettings, RetentionSettings, build

ALERT_METRIC = "pipeline_alert_commit_latency_seconds_bucket"
CONFLICTS_METRIC = "pipeline_upsert_conflicts_total"
# A Monday's open (XNYS): one-minute bars from here on, warm-up first.
START = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)
Buckets = list[tuple[dict[str, str], float]]


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for make test")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rate", type=int, default=2000, help="steady bars/s")
    parser.add_argument("--seconds", type=float, default=60.0, help="steady phase length")
    parser.add_argument(
        "--settle",
        type=float,
        default=60.0,
        help="seconds of the steady load published before the measured phase",
    )
    parser.add_argument("--warm", type=int, default=125, help="bars per symbol before the run")
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument(
        "--forecaster-grace",
        type=float,
        default=30.0,
        help="seconds the forecaster gets to catch up once storage and analytics have drained",
    )
    add_cadence_arguments(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.symbols, args.rate, args.seconds, args.warm, args.settle = 20, 200, 2.0, 60, 1.0
        args.forecaster_grace = 10.0
        args.forecast_every = 20  # the full run's fit demand at a tenth of its rate
    return args


def prepare_partitions(target: BenchTarget, last: datetime) -> None:
    """The months the bench writes exist, as upkeep would have made them for live data, so no
    row goes through a default partition; then the writer's grants on them."""
    with psycopg.connect(target.postgres.conninfo(), autocommit=True) as conn:
        for table, interval in (("price_bars", "1m"), ("indicators", "1m"), ("forecasts", None)):
            ensure_range(conn, RetentionSettings(), table, interval, START, last)
    bootstrap(target.postgres, target.postgres.dbname)


def writer_buckets(service: Service, writer: str) -> Buckets:
    return [
        (labels, value)
        for labels, value in service.metrics().get(ALERT_METRIC, [])
        if labels.get("writer") == writer
    ]


def added(a: Buckets, b: Buckets) -> Buckets:
    """Two histograms with the same bounds as one."""
    other = {labels["le"]: value for labels, value in b}
    return [(labels, value + other.get(labels["le"], 0.0)) for labels, value in a]


def conflicts(service: Service) -> int:
    return int(sum(value for _, value in service.metrics().get(CONFLICTS_METRIC, [])))


def quantile_ms(buckets: Buckets, quantile: float) -> object:
    """The quantile in ms; `>B` when it lies past the largest finite bucket bound B (the
    histogram only says it is larger), `nan` without observations."""
    points = sorted((float(labels["le"]), count) for labels, count in buckets)
    if not points or points[-1][1] == 0:
        return "nan"
    finite = [(bound, count) for bound, count in points if bound != float("inf")]
    if finite and finite[-1][1] < quantile * points[-1][1]:
        return f">{1000 * finite[-1][0]:g}"
    return 1000 * histogram_quantile(buckets, quantile)


def emit_quantiles(prefix: str, buckets: Buckets) -> None:
    emit(f"{prefix}_count", int(max((count for _, count in buckets), default=0)))
    emit(f"p50_{prefix}_ms", quantile_ms(buckets, 0.50))
    emit(f"p99_{prefix}_ms", quantile_ms(buckets, 0.99))


def count_rows(target: BenchTarget) -> tuple[int, int]:
    with psycopg.connect(target.postgres.conninfo()) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM price_bars WHERE source = 'bench'),"
            " (SELECT count(*) FROM indicators)"
        ).fetchone()


def lag_view(target: BenchTarget) -> tuple[StoredOffsets, Watermarks]:
    admin = AdminClient(target.kafka.client_config())
    with psycopg.connect(target.postgres.conninfo()) as conn:
        return offsets_and_marks(target, admin, conn)


def forecaster_counts(target: BenchTarget, group: str) -> dict[str, int]:
    """Bars each series of the forecaster's state has been fed (committed with its offsets)."""
    with psycopg.connect(target.postgres.conninfo()) as conn:
        rows = conn.execute(
            "SELECT symbol, packed_state, state FROM analytics_state WHERE consumer_group = %s",
            (group,),
        ).fetchall()
    return {symbol: int(state_document(packed, legacy)["bars"]) for symbol, packed, legacy in rows}


def all_delivered(deliveries: Deliveries) -> list[tuple[bytes, int, int]]:
    """Where the broker put a steady load's bars; every one of them must have been delivered."""
    if deliveries.failed:
        raise SystemExit(
            f"bench.e2e: {deliveries.failed} bars not delivered: {deliveries.first_error}"
        )
    return deliveries.placed


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    # One load of --settle + --seconds: the measured bars continue the settling ones.
    load = SteadyLoad.of(
        argparse.Namespace(**{**vars(args), "seconds": args.settle + args.seconds}), START, seed=5
    )
    settling_bars = int(args.rate * args.settle) // args.symbols * args.symbols
    warm, settling, live = load.warm, load.live[:settling_bars], load.live[settling_bars:]

    with fresh_target("e2e") as target:
        prepare_partitions(target, load.last_ts + timedelta(minutes=1))
        emit_settings(
            target,
            **load.settings,
            warm_bars_per_symbol=args.warm,
            settle_s=args.settle,
            bars=len(warm) + len(settling) + len(live),
            forecaster_grace_s=args.forecaster_grace,
            batch_size=build(ConsumerSettings).batch_size,
        )
        placed = publish_steady(target, warm, None).placed
        storage = Service("consumer.storage", target)
        analytics = Service("analytics.consumer", target)
        forecaster = Service(
            "analytics.forecaster", target, FORECAST_EVERY=str(args.forecast_every)
        )
        groups = {
            "storage": storage.group("storage"),
            "analytics": analytics.group("analytics"),
            "forecaster": forecaster.group("forecaster"),
        }
        try:
            for service in (storage, analytics, forecaster):
                service.wait_ready()
            # Every service past the warm-up (indicators, alert states and the forecaster's
            # windows warm) before the steady phase: its figures are the steady state's. The
            # forecaster ends the warm-up ~2 s after the others; started on its backlog, the
            # steady phase measured that burst (62,500 bars of catching up beside the load) and
            # the forecaster's alerts waited on it (their p99 read 1.2 s).
            warmed = wait_drained(
                target, [groups["storage"], groups["analytics"]], args.drain_timeout
            )
            emit("warm_drain_s", max(warmed.values()))
            try:
                forecaster_warmed = wait_drained(
                    target, [groups["forecaster"]], args.forecaster_grace
                )
                emit("forecaster_warm_drain_s", forecaster_warmed[groups["forecaster"]])
            except RuntimeError:
                # More fits than the machine does (--forecast-every 5): it lags by design, and
                # forecaster_behind_at_start says by how much.
                emit("forecaster_warm_drain_s", "nan")
            for service in (storage, analytics):
                service.wait_counted(len(warm))
            emit(
                "forecaster_behind_at_start",
                behind(groups["forecaster"], target.topics.market_bars, *lag_view(target)),
            )
            placed += all_delivered(publish_steady(target, settling, args.rate, measured=False))
            before_store = storage.metrics().get(LATENCY_METRIC, [])
            before_alerts = {
                "analytics": writer_buckets(analytics, "analytics"),
                "forecaster": writer_buckets(forecaster, "forecaster"),
            }

            services = {"storage": storage, "analytics": analytics, "forecaster": forecaster}
            cpu_before = {name: s.cpu_seconds() for name, s in services.items()}
            cpu_before["postgres"] = processes_cpu_seconds("postgres")
            machine_before = MachineTicks.now()
            wal_before, started = wal_position(target), time.monotonic()
            deliveries = publish_steady(target, live, args.rate)
            published_s = time.monotonic() - started
            wal_bytes = wal_position(target) - wal_before
            busy_share, steal_share = MachineTicks.now().since(machine_before)
            cpu = {name: s.cpu_seconds() - cpu_before[name] for name, s in services.items()}
            cpu["postgres"] = processes_cpu_seconds("postgres") - cpu_before["postgres"]
            placed += all_delivered(deliveries)
            drained = wait_drained(
                target, [groups["storage"], groups["analytics"]], args.drain_timeout
            )
            try:
                drained.update(wait_drained(target, [groups["forecaster"]], args.forecaster_grace))
            except RuntimeError:
                pass  # still behind: its lag is reported, its committed part checked below

            for service in (storage, analytics):
                service.wait_counted(len(warm) + len(settling) + len(live))
            store = subtract_buckets(storage.metrics()[LATENCY_METRIC], before_store)
            alerts = {
                writer: subtract_buckets(writer_buckets(service, writer), before_alerts[writer])
                for writer, service in (("analytics", analytics), ("forecaster", forecaster))
            }
            doubled_rows = sum(conflicts(s) for s in (storage, analytics, forecaster))
        finally:
            stop_all((storage, analytics, forecaster))

        emit("steady_bars", len(live))
        emit("steady_rate_achieved_bars_per_s", len(live) / published_s)
        # What PostgreSQL logged while the load ran (every service's writes: most of its work).
        emit("wal_mb_per_s", wal_bytes / published_s / 1e6)
        emit("wal_bytes_per_bar", wal_bytes / len(live))
        # CPU while the load was published, per steady bar: steadier than a latency on a noisy
        # machine, so two versions compare by it (the forecaster's: its own process, not its
        # fit workers; postgres: every server process, when the server runs on this machine).
        for name, seconds in cpu.items():
            emit(f"{name}_cpu_us_per_bar", 1e6 * seconds / len(live))
        emit("machine_busy_share", busy_share)
        emit("machine_steal_share", steal_share)
        emit("storage_drain_s", drained[groups["storage"]])
        emit("analytics_drain_s", drained[groups["analytics"]])
        emit("forecaster_drain_s", drained.get(groups["forecaster"], "nan"))
        emit_quantiles("store_latency", store)
        emit_quantiles("alert_latency", added(alerts["analytics"], alerts["forecaster"]))
        emit_quantiles("analytics_alert_latency", alerts["analytics"])
        emit_quantiles("forecaster_alert_latency", alerts["forecaster"])
        lost, duplicated = account(target, groups, placed, doubled_rows)
    if lost or duplicated:
        raise SystemExit(f"bench.e2e: lost={lost} duplicated={duplicated}, both must be 0")
    return 0


def account(
    target: BenchTarget,
    groups: dict[str, str],
    placed: list[tuple[bytes, int, int]],
    doubled_rows: int,
) -> tuple[int, int]:
    """Emit where every confirmed message went; returns (lost, duplicated)."""
    confirmed = len(placed)
    price_rows, indicator_rows = count_rows(target)
    stored, marks = lag_view(target)
    topic = target.topics.market_bars
    in_topic = sum(high - low for (t, _), (low, high) in marks.items() if t == topic)
    lag = {name: behind(group, topic, stored, marks) for name, group in groups.items()}
    past = sum(beyond(group, topic, stored, marks) for group in groups.values())
    # The forecaster may still lag (its lag is no loss: the messages wait in Kafka past its
    # stored offsets): what it has committed must have been fed to its series exactly once.
    expected = below_stored(placed, groups["forecaster"], topic, stored)
    fed = forecaster_counts(target, groups["forecaster"])
    forecaster_missing = sum(max(0, n - fed.get(k, 0)) for k, n in expected.items())
    forecaster_extra = sum(max(0, n - expected.get(k, 0)) for k, n in fed.items())
    missing = {
        "price_bars": max(0, confirmed - price_rows),
        "indicators": max(0, confirmed - indicator_rows),
        "forecaster_series": forecaster_missing,
    }
    for name, count in missing.items():
        emit(f"missing_{name}", count)
    for name, count in lag.items():
        emit(f"behind_{name}", count)
    emit("confirmed", confirmed)
    emit("in_topic", in_topic)
    emit("upsert_conflicts", doubled_rows)
    lost = sum(missing.values()) + lag["storage"] + lag["analytics"]
    duplicated = (
        max(0, in_topic - confirmed)
        + max(0, price_rows - confirmed)
        + max(0, indicator_rows - confirmed)
        + forecaster_extra
        + past
        + doubled_rows
    )
    emit("lost", lost)
    emit("duplicated", duplicated)
    return lost, duplicated


if __name__ == "__main__":
    raise SystemExit(main())
