"""A small pipeline on recorded responses, run as processes on the ports `make monitor` scrapes:
producer.market, N consumer.storage replicas, analytics.consumer and pipeline.monitor
(HEALTH_BASE_PORT + offset + 100 per replica), for the Prometheus and Grafana tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException

from shared.health import health_port
from shared.kafka import Topics, ensure_topics
from shared.settings import HealthSettings, KafkaSettings, PostgresSettings
from tests.integration.bar_stream import drained
from tests.integration.processes import (
    FAST_MEMBER,
    ServiceProcess,
    free_base,
    wait_for,
)

SYMBOLS = "AAPL,MSFT,NVDA,SPY"  # the defaults; SPY has 1m recordings only


@dataclass
class Pipeline:
    pg: PostgresSettings
    base_port: int
    # (service name, replica index) -> its process
    processes: dict[tuple[str, int], ServiceProcess]


def replica(
    name: str, env: dict[str, str], log_dir: Path, base_port: int, index: int
) -> ServiceProcess:
    """`python -m NAME` as replica `index`: on its registered port, not a free one."""
    process = ServiceProcess(
        name, env, log_dir, HEALTH_BASE_PORT=str(base_port), HEALTH_REPLICA_INDEX=str(index)
    )
    del process.env["HEALTH_PORT"]  # ServiceProcess picks a free port by default
    process.port = health_port(HealthSettings(base_port=base_port, replica_index=index), name)
    return process


def free_base_port(replicas: list[tuple[str, int]]) -> int:
    """A HEALTH_BASE_PORT whose ports for these (service, replica index) are free now, drawn at
    random: concurrent test sessions scanning from the same start would collide."""
    return free_base(
        lambda base: [
            health_port(HealthSettings(base_port=base, replica_index=index), name)
            for name, index in replicas
        ],
        span=1000,
        step=10,
    )


def settled(check: Callable[..., bool], *args: object) -> bool:
    """`check(*args)`, False while the broker cannot answer yet (a busy shared test stack)."""
    try:
        return check(*args)
    except KafkaException:
        return False


@contextmanager
def replayed_pipeline(
    pg: PostgresSettings, recordings: Path, log_dir: Path, storage_replicas: int
) -> Iterator[Pipeline]:
    """The services running on `recordings` until the block ends; entered once the producer's
    first poll (the recorded history) is stored and analysed."""
    kafka = KafkaSettings(topic_prefix=f"t{uuid.uuid4().hex[:10]}.")
    topics = Topics(kafka.topic_prefix)
    ensure_topics(kafka, topics)
    suffix = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "POSTGRES_DBNAME": pg.dbname,
        "LOCAL_STACK": "off",
        "DATA_SOURCE": "replay",
        "REPLAY_DIR": str(recordings),
        "MARKET_SYMBOLS": SYMBOLS,
        "MARKET_INTERVAL": "1d",
        "MARKET_REQUESTS_PER_MINUTE": "600",
        # Groups are broker-wide: this pipeline's own.
        "CONSUMER_GROUP_STORAGE": f"storage-{suffix}",
        "CONSUMER_GROUP_ANALYTICS": f"analytics-{suffix}",
        # The monitor's figures (lag, freshness) once a second instead of once a minute.
        "MONITOR_INTERVAL_S": "1",
        **FAST_MEMBER,
    }
    wanted = [
        ("producer.market", 0),
        *(("consumer.storage", index) for index in range(storage_replicas)),
        ("analytics.consumer", 0),
        ("pipeline.monitor", 0),
    ]
    base_port = free_base_port(wanted)
    processes = {
        (name, index): replica(name, env, log_dir, base_port, index) for name, index in wanted
    }
    try:
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(ServiceProcess.start, processes.values()))
        for process in processes.values():
            assert process.running, process.log()
        # The producer's first poll publishes the recorded history and logs once flushed.
        market = processes[("producer.market", 0)]
        wait_for(lambda: "poll: " in market.log(), 90, "producer.market's first poll")
        first = next(line for line in market.log().splitlines() if "poll: " in line)
        assert " published" in first and "failed" not in first, first
        for group in (env["CONSUMER_GROUP_STORAGE"], env["CONSUMER_GROUP_ANALYTICS"]):
            wait_for(
                lambda group=group: settled(drained, pg, kafka, group, topics.market_bars),
                90,
                f"{group} to drain market.bars",
            )
        yield Pipeline(pg, base_port, processes)
    finally:
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(ServiceProcess.stop, processes.values()))
