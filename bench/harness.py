"""The one benchmark harness: fresh topics and database, settings lines, a service process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from db.migrate import migrate
from shared.kafka import Topics, ensure_topics, producer_config
from shared.settings import KafkaSettings, PostgresSettings, build

ROOT = Path(__file__).resolve().parents[1]


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


@contextmanager
def fresh_target(name: str) -> Iterator[BenchTarget]:
    """A fresh topic prefix and a freshly migrated database, dropped afterwards."""
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
        topics = Topics(kafka.topic_prefix)
        ensure_topics(kafka, topics)
        yield BenchTarget(kafka, postgres, topics)
    finally:
        with psycopg.connect(base.conninfo(dbname="postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


def emit_settings(target: BenchTarget, **extra: object) -> None:
    """The settings the figures were measured under (DESIGN.md "Benchmarks")."""
    with psycopg.connect(target.postgres.conninfo()) as conn:
        for setting in ("fsync", "synchronous_commit", "shared_buffers", "server_version"):
            emit(
                f"pg_{setting}",
                conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()[0],
            )
    emit("kafka_acks", producer_config(target.kafka, "bench")["acks"])
    emit("kafka_idempotence", producer_config(target.kafka, "bench")["enable.idempotence"])
    emit("partitions_market_bars", target.kafka.partitions_market_bars)
    for name, value in extra.items():
        emit(name, value)


def produce_all(producer: Producer, topic: str, messages: Iterable[tuple[bytes, bytes]]) -> None:
    """Produce every message, waiting for room when librdkafka's local queue is full."""
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """A pipeline service run as its own process against the bench target."""

    def __init__(self, module: str, target: BenchTarget, **env: str) -> None:
        self.port = _free_port()
        self.env = {
            **os.environ,
            "KAFKA_TOPIC_PREFIX": target.kafka.topic_prefix,
            "POSTGRES_DBNAME": target.postgres.dbname,
            "HEALTH_PORT": str(self.port),
            "LOCAL_STACK": "off",
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((sample.labels, sample.value))
        return samples

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                self.metrics()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("service did not answer on its health port")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def histogram_quantile(buckets: list[tuple[dict[str, str], float]], quantile: float) -> float:
    """Prometheus-style quantile from cumulative `le` buckets, linear within a bucket."""
    points = sorted((float(labels["le"]), count) for labels, count in buckets)
    total = points[-1][1]
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
