"""The one benchmark harness: fresh topics and database, settings lines, a service process."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from db.bootstrap import bootstrap
from db.migrate import migrate
from shared import hot_path
from shared.kafka import Topics, delete_topics, ensure_topics, make_producer, producer_config
from shared.schemas import Bar, encode, event_id
from shared.settings import KafkaSettings, PostgresSettings, build

ROOT = Path(__file__).resolve().parents[1]
LATENCY_METRIC = "pipeline_commit_latency_seconds_bucket"
GROUP_KINDS = ("storage", "analytics", "forecaster")


def emit(name: str, value: object) -> None:
    """One figure, as the `name=value` line every bench prints."""
    if isinstance(value, float):
        value = f"{value:.6g}"
    print(f"{name}={value}", flush=True)


@dataclass(frozen=True)
class BenchTarget:
    kafka: KafkaSettings
    postgres: PostgresSettings
    topics: Topics


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def fresh_target(name: str) -> Iterator[BenchTarget]:
    """A fresh topic prefix and a freshly migrated database, dropped afterwards (on SIGTERM
    too: it becomes SystemExit, so the services, topics and database are cleaned up)."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    kafka = build(KafkaSettings).model_copy(
        update={"topic_prefix": f"bench-{name}-{uuid.uuid4().hex[:8]}."}
    )
    base = build(PostgresSettings)
    dbname = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base.conninfo(dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    postgres = base.model_copy(update={"dbname": dbname})
    try:
        migrate(postgres.conninfo())
        # The services log in as pipeline_writer (shared/settings.load_settings): its grants.
        bootstrap(postgres, dbname)
        topics = Topics(kafka.topic_prefix)
        ensure_topics(kafka, topics)
        yield BenchTarget(kafka, postgres, topics)
    finally:
        delete_topics(kafka, Topics(kafka.topic_prefix))
        with psycopg.connect(base.conninfo(dbname="postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


# The durable settings every figure must be measured under (README "Benchmarks"): the values
# each may have. synchronous_commit: every level but `off` waits for the local WAL flush.
DURABLE = {
    "pg_fsync": ("on",),
    "pg_synchronous_commit": ("on", "local", "remote_write", "remote_apply"),
    "pg_full_page_writes": ("on",),
    "pg_unlogged_tables": ("0",),
    "kafka_acks": ("all",),
    "kafka_idempotence": ("True",),
}


def durability_problems(observed: dict[str, str]) -> list[str]:
    """Each durable setting `observed` differs from, as `name=found (needs expected)`."""
    return [
        f"{name}={observed.get(name)} (needs {' or '.join(allowed)})"
        for name, allowed in DURABLE.items()
        if observed.get(name) not in allowed
    ]


WAL_POSITION = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
UNLOGGED = "SELECT count(*) FROM pg_class WHERE relpersistence = 'u' AND relkind IN ('r', 'p')"


def emit_settings(target: BenchTarget, **extra: object) -> None:
    """The settings the figures were measured under (README "Benchmarks"); stops the bench
    when any of them is not durable, before a figure is measured."""
    observed: dict[str, str] = {}
    with psycopg.connect(target.postgres.conninfo()) as conn:
        for setting in (
            "fsync",
            "synchronous_commit",
            "full_page_writes",
            "shared_buffers",
            "server_version",
        ):
            observed[f"pg_{setting}"] = str(
                conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()[0]
            )
        observed["pg_unlogged_tables"] = str(conn.execute(UNLOGGED).fetchone()[0])
    config = producer_config(target.kafka, "bench")
    observed["kafka_acks"] = str(config["acks"])
    observed["kafka_idempotence"] = str(config["enable.idempotence"])
    for name, value in observed.items():
        emit(name, value)
    # Compiled or not (shared/hot_path.py): the analytics figures depend on it.
    emit("hot_path", hot_path.state().replace(" ", "_"))
    emit("partitions_market_bars", target.kafka.partitions_market_bars)
    # Part of every latency from CreateTime (README "Benchmarks").
    emit("kafka_linger_ms", target.kafka.linger_ms)
    emit("kafka_fetch_wait_max_ms", target.kafka.fetch_wait_max_ms)
    emit("kafka_fetch_min_bytes", target.kafka.fetch_min_bytes)
    for name, value in extra.items():
        emit(name, value)
    problems = durability_problems(observed)
    if problems:
        raise SystemExit("bench refused, not durable: " + ", ".join(problems))


def wal_position(target: BenchTarget) -> int:
    """The server's WAL insert position in bytes (cluster-wide: a bench runs alone)."""
    with psycopg.connect(target.postgres.conninfo()) as conn:
        return int(conn.execute(WAL_POSITION).fetchone()[0])  # type: ignore[index]


def produce_all(
    producer: Producer,
    topic: str,
    messages: Iterable[tuple[bytes, bytes]],
    on_delivery: Callable[[Any, Any], None] | None = None,
) -> None:
    """Produce every message, waiting for room when librdkafka's local queue is full."""
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """A pipeline service run as its own process against the bench target. Its log goes to a
    file (a pipe nobody reads fills and stalls the service); a drain (`drain_rate`) fails at
    once, with the log's tail, when a running service has exited."""

    running: list[Service] = []

    def __init__(self, module: str, target: BenchTarget, **env: str) -> None:
        self.module = module
        self.port = _free_port()
        self.env = {
            **os.environ,
            # Kafka groups are broker-wide: benches side by side (or a test run) must not join
            # each other's groups. One name per target and service, shared by its replicas.
            **{
                f"CONSUMER_GROUP_{kind.upper()}": f"{kind}-{target.kafka.topic_prefix}"
                for kind in GROUP_KINDS
            },
            "KAFKA_TOPIC_PREFIX": target.kafka.topic_prefix,
            "POSTGRES_DBNAME": target.postgres.dbname,
            "HEALTH_PORT": str(self.port),
            "LOCAL_STACK": "off",
            **env,
        }
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"bench-{module}-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.terminated = False
        Service.running.append(self)

    def log_tail(self, size: int = 3000) -> str:
        return Path(self.log.name).read_text(errors="replace")[-size:]

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(
                f"{self.module} exited ({code}); log {self.log.name}:\n{self.log_tail()}"
            )

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((sample.labels, sample.value))
        return samples

    def wait_counted(self, total: int, timeout: float = 60) -> None:
        """Until this consumer's own figures count `total` messages consumed. A batch's COMMIT
        shows in consumer_offsets a moment before the service counts it (a pipelined consumer,
        shared/loop/flight.py, counts a batch when it lands): a histogram snapshot taken in
        between put that batch's latencies — a drain's, tens of seconds — on the wrong side."""
        deadline = time.monotonic() + timeout
        while True:
            samples = self.metrics().get("pipeline_messages_total", [])
            counted = sum(value for labels, value in samples if labels.get("direction") == "in")
            if counted >= total:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.module}: {counted:g} of {total} messages counted")
            time.sleep(0.01)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                self.metrics()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("service did not answer on its health port")

    def group(self, kind: str) -> str:
        """The consumer group this service's `kind` (storage, analytics, forecaster) joins."""
        return self.env[f"CONSUMER_GROUP_{kind.upper()}"]

    def peak_rss_mb(self) -> float:
        """The process's peak resident set so far (VmHWM), in MB; read it before stop()."""
        return peak_rss_mb(self.process.pid)

    def cpu_seconds(self) -> float:
        """CPU time the process (its threads, not its children) has used so far."""
        return cpu_seconds(self.process.pid)

    def terminate(self) -> None:
        """Ask the service to stop (SIGTERM, once), without waiting for it."""
        if not self.terminated and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self) -> None:
        if self in Service.running:
            Service.running.remove(self)
        self.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def stop_all(services: Iterable[Service]) -> None:
    """Stop several services at once: every SIGTERM first, then each wait (their shutdowns
    overlap instead of adding up)."""
    services = list(services)
    for service in services:
        service.terminate()
    for service in services:
        service.stop()


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` from /proc (clock ticks → seconds)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())[1]


def processes_cpu_seconds(command: str) -> float:
    """utime + stime of every process named `command` on this machine ("postgres": the
    server's backends and workers, when the bench's PostgreSQL runs here; 0 otherwise)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, seconds = _stat_cpu_seconds(stat.read_text())
        except OSError:  # ended meanwhile
            continue
        if name == command:
            total += seconds
    return total


def _stat_cpu_seconds(stat: str) -> tuple[str, float]:
    """(command name, utime + stime in seconds) of a /proc/PID/stat line."""
    name, _, rest = stat.partition(" (")[2].rpartition(")")
    fields = rest.split()
    return name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class MachineTicks:
    """/proc/stat's first line: clock ticks spent busy, in all, and stolen by the hypervisor."""

    busy: int
    total: int
    steal: int

    @classmethod
    def now(cls) -> MachineTicks:
        # user nice system idle iowait irq softirq steal (guest time is inside user)
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        idle = ticks[3] + ticks[4]
        return cls(sum(ticks) - idle, sum(ticks), ticks[7])

    def since(self, before: MachineTicks) -> tuple[float, float]:
        """(busy share, stolen share) of the machine's cores since `before`."""
        total = max(1, self.total - before.total)
        return (self.busy - before.busy) / total, (self.steal - before.steal) / total


def peak_rss_mb(pid: int) -> float:
    """VmHWM of `pid` (the kernel's high-water mark of its resident set) in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def histogram_quantile(buckets: list[tuple[dict[str, str], float]], quantile: float) -> float:
    """Prometheus-style quantile from cumulative `le` buckets, linear within a bucket."""
    points = sorted((float(labels["le"]), count) for labels, count in buckets)
    total = points[-1][1] if points else 0
    if total == 0:
        return float("nan")
    rank = quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in points:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def synthetic_bars(symbols: int, per_symbol: int, start: datetime) -> list[tuple[bytes, bytes]]:
    """Encoded one-minute bars (synthetic prices; the bench measures the pipeline, not data)."""
    messages = []
    fetched_at = datetime.now(UTC)
    for s in range(symbols):
        symbol = f"S{s:04d}"
        key = symbol.encode()
        for i in range(per_symbol):
            ts = start + timedelta(minutes=i)
            price = 50.0 + s * 0.1 + i * 0.001
            bar = Bar(
                event_id=event_id("bench", symbol, "1m", ts),
                source="bench",
                symbol=symbol,
                interval="1m",
                ts=ts,
                open=price,
                high=price + 0.05,
                low=price - 0.05,
                close=price + 0.01,
                adj_close=None,
                volume=100 + i,
                fetched_at=fetched_at,
            )
            messages.append((key, encode(bar)))
    return messages


def offsets_progress(conn: psycopg.Connection) -> tuple[int, int]:
    """(partitions claimed, sum of stored next offsets) of the one consumer group in the bench."""
    row = conn.execute(
        "SELECT count(*), coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets"
    ).fetchone()
    return row[0], row[1]


def drain_rate(target: BenchTarget, total: int, timeout: float) -> float:
    """Bars per second from the partitions' assignment (their claim rows) to the drain. One
    connection asks every 10 ms (a connection per question would fork a backend each time, on
    the cores the services under test run on)."""
    deadline = time.monotonic() + timeout
    assigned_at, done_before = None, 0
    with psycopg.connect(target.postgres.conninfo(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            for service in Service.running:
                service.check_alive()
            claimed, done = offsets_progress(conn)
            now = time.monotonic()
            if assigned_at is None and claimed > 0:
                assigned_at, done_before = now, done
            if done >= total:
                assert assigned_at is not None
                return (total - done_before) / max(now - assigned_at, 1e-9)
            time.sleep(0.01)
    raise RuntimeError(f"drain did not finish within {timeout}s")


def load_producer(target: BenchTarget, client_id: str, timeout_s: float = 30.0) -> Producer:
    """A load generator's idempotent producer, returned once the broker has given it its
    producer id. A new one holds its first messages for about 500 ms while it gets the id
    (librdkafka waits that long before asking when no connection is up yet): CreateTime is set
    at produce(), so a steady phase started at once charged those 500 ms to the pipeline's
    latency (about 1,000 bars at 2,000/s: more than the slowest 1% by themselves)."""
    assigned = threading.Event()

    def on_stats(raw: str) -> None:
        if assigned.is_set():
            return  # still called every 50 ms (the interval is fixed at creation): not parsed
        if json.loads(raw).get("eos", {}).get("idemp_state") == "Assigned":
            assigned.set()

    producer = Producer(
        {
            **producer_config(target.kafka, client_id),
            "statistics.interval.ms": 50,
            "stats_cb": on_stats,
        }
    )
    deadline = time.monotonic() + timeout_s
    while not assigned.is_set():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench producer {client_id}: no producer id after {timeout_s:g}s")
        producer.poll(0.05)
    return producer


class DeliveryDelays:
    """A load's produce() → broker acknowledgement of each message (Message.latency), as a
    delivery callback: a stall on the load generator's side shows here, where the pipeline's
    latency (measured from CreateTime, set at produce()) would only show it as its own."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, error: Any, message: Any) -> None:
        latency = message.latency() if error is None else None
        if latency is not None:
            self.seconds.append(latency)

    def emit(self) -> None:
        ordered = sorted(self.seconds)
        if ordered:
            emit("load_delivery_p99_ms", 1000 * ordered[int(0.99 * (len(ordered) - 1))])
            emit("load_delivery_max_ms", 1000 * ordered[-1])


def produce_paced(
    producer: Producer,
    topic: str,
    messages: Sequence[tuple[bytes, bytes]],
    rate: int | None,
    on_delivery: Callable[[Any, Any], None] | None = None,
) -> None:
    """Produce `messages` at `rate` per second in 10 ms ticks (None: as fast as the producer
    takes them). CreateTime is set when each is produced: the start of every latency the
    services measure."""
    per_tick = max(1, rate // 100) if rate else len(messages) or 1
    started = time.monotonic()
    for tick, first in enumerate(range(0, len(messages), per_tick)):
        produce_all(producer, topic, messages[first : first + per_tick], on_delivery)
        producer.poll(0)
        pause = started + (tick + 1) / 100 - time.monotonic()
        if rate and pause > 0:
            time.sleep(pause)


def steady_load(target: BenchTarget, rate: int, seconds: float, symbols: int) -> int:
    """Publish `rate` bars/s in 10 ms ticks for `seconds`; returns how many were sent."""
    per_tick, ticks = max(1, rate // 100), int(seconds * 100)
    messages = synthetic_bars(
        symbols, max(1, int(rate * seconds) // symbols + 1), datetime(2025, 1, 6, tzinfo=UTC)
    )[: per_tick * ticks]
    producer = load_producer(target, "bench-steady")
    delays = DeliveryDelays()
    produce_paced(producer, target.topics.market_bars, messages, rate, delays)
    producer.flush(30)
    delays.emit()
    return len(messages)


def subtract_buckets(
    after: list[tuple[dict[str, str], float]], before: list[tuple[dict[str, str], float]]
) -> list[tuple[dict[str, str], float]]:
    earlier = {labels["le"]: value for labels, value in before}
    return [(labels, value - earlier.get(labels["le"], 0.0)) for labels, value in after]


def consumer_arguments(prog: str) -> argparse.ArgumentParser:
    """The options every consumer bench takes (sizes, steady rate, batch size)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for make test")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bars", type=int, default=200_000, help="bars pre-filled in the topic")
    parser.add_argument("--rate", type=int, default=2000, help="steady bars/s for latency")
    parser.add_argument("--seconds", type=float, default=30.0, help="steady phase length")
    parser.add_argument("--batch-size", type=int, default=5000)
    return parser


def prefill_topic(target: BenchTarget, symbols: int, bars: int) -> int:
    """`bars` synthetic bars over `symbols` published before the consumer starts."""
    messages = synthetic_bars(symbols, max(1, bars // symbols), datetime(2024, 1, 2, tzinfo=UTC))
    producer = make_producer(target.kafka, "bench-prefill")
    produce_all(producer, target.topics.market_bars, messages)
    producer.flush(60)
    return len(messages)


def measure_consumer(
    target: BenchTarget, module: str, args: argparse.Namespace, published: int
) -> int:
    """Run `module` over the pre-filled topic: emit bars_per_s, then latency percentiles at a
    steady rate. Returns how many bars it consumed in all (for the caller's row check)."""
    consumer = Service(module, target, CONSUMER_BATCH_SIZE=str(args.batch_size))
    try:
        consumer.wait_ready()
        cpu_before = consumer.cpu_seconds()
        emit("bars_per_s", drain_rate(target, published, timeout=600))
        # The consumer's own CPU per bar: a figure this noisy machine's neighbours move far less
        # than a rate (bars_per_s also waits on PostgreSQL, which runs beside it).
        emit("consumer_cpu_us_per_bar", 1e6 * (consumer.cpu_seconds() - cpu_before) / published)
        consumer.wait_counted(published)
        before = consumer.metrics().get(LATENCY_METRIC, [])
        sent = steady_load(target, args.rate, args.seconds, args.symbols)
        drain_rate(target, published + sent, timeout=120)
        consumer.wait_counted(published + sent)
        after = consumer.metrics()[LATENCY_METRIC]
    finally:
        consumer.stop()
    steady = subtract_buckets(after, before)
    emit("steady_rate_bars_per_s", args.rate)
    emit("steady_bars", sent)
    emit("p50_latency_ms", 1000 * histogram_quantile(steady, 0.50))
    emit("p99_latency_ms", 1000 * histogram_quantile(steady, 0.99))
    return published + sent
