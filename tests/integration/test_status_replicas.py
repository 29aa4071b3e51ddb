"""`python -m pipeline status` and the monitor read every replica: two consumer.storage
replicas on their health ports (base + offset + 100 × index) are shown each, their rows summed;
a stopped one turns the service red, named (the monitor: unhealthy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from shared.kafka import Topics
from shared.services import CONSUMER_STORAGE, PIPELINE_MONITOR
from shared.settings import KafkaSettings, PostgresSettings
from tests.conftest import REPO_ROOT
from tests.integration.bar_stream import drained, minute_bars, publish_bars
from tests.integration.processes import (
    ServiceProcess,
    free_port_range,
    storage_member,
    wait_for,
)

SYMBOLS = [f"REP{i}" for i in range(12)]


def status(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "status", "--sample", "0.2", "--color", "never"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout + done.stderr


def storage_lines(screen: str) -> list[str]:
    """The consumer.storage row and the replica lines under it."""
    lines = screen.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(CONSUMER_STORAGE.name + " "))
    shown = [lines[at]]
    for line in lines[at + 1 :]:
        if not line.startswith("    "):
            break
        shown.append(line)
    return shown


def monitored(monitor: ServiceProcess, name: str) -> float | None:
    """The monitor's gauge `name` for consumer.storage (None when not set)."""
    samples = monitor.samples()
    return samples.get((name, (("service", CONSUMER_STORAGE.name),)))


def recorded_rows(pg: PostgresSettings) -> float | None:
    """consumer.storage's rows as the monitor's newest round recorded them."""
    with psycopg.connect(pg.conninfo()) as conn:
        found = conn.execute(
            "SELECT value FROM latest_pipeline_metrics WHERE name = 'pipeline_rows_written'"
            " AND labels->>'service' = %s",
            (CONSUMER_STORAGE.name,),
        ).fetchone()
    return None if found is None else found[0]


def test_status_reads_both_storage_replicas_and_names_the_one_that_stopped(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    base = free_port_range(span=250)
    env = {**service_env, "HEALTH_BASE_PORT": str(base)}
    env.pop("HEALTH_PORT", None)
    ports = [base + CONSUMER_STORAGE.port_offset + 100 * index for index in (0, 1)]
    members = [
        storage_member(env, tmp_path, group, port=port, HEALTH_REPLICA_INDEX=str(index)).start()
        for index, port in enumerate(ports)
    ]
    replicas = {"PROMETHEUS_REPLICAS": "consumer.storage=2"}
    monitor = ServiceProcess(
        "pipeline.monitor",
        {**env, **replicas, "MONITOR_INTERVAL_S": "1"},
        tmp_path,
        port=base + PIPELINE_MONITOR.port_offset,
    ).start()
    bars = minute_bars(SYMBOLS, 4)
    try:
        wait_for(
            lambda: all(m.metrics().get("pipeline_partitions", 0) > 0 for m in members),
            60,
            "both replicas to own partitions",
        )
        publish_bars(kafka_settings, topics.market_bars, bars)
        wait_for(
            lambda: drained(pg_settings, kafka_settings, group, topics.market_bars), 60, "drain"
        )
        rows = [m.metrics().get("pipeline_rows_written_total", 0.0) for m in members]
        assert all(rows), rows  # each replica wrote some of the bars
        wait_for(
            lambda: recorded_rows(pg_settings) == sum(rows),
            30,
            "the monitor to record both replicas' rows",
            detail=lambda: recorded_rows(pg_settings),
        )
        assert monitored(monitor, "pipeline_service_healthy") == 1
        screen = status({**env, **replicas})
        service, *shown_lines = storage_lines(screen)
        assert service.split()[1:3] == ["up", "ok"], screen
        assert float(service.split()[4]) == sum(rows), screen  # ROWS: both replicas
        shown = [line.split() for line in shown_lines if line.split()[0].startswith("#")]
        assert [(r[0], r[1], r[2], float(r[4])) for r in shown] == [
            ("#0", "up", "ok", rows[0]),
            ("#1", "up", "ok", rows[1]),
        ], screen

        assert members[1].stop() == 0, members[1].log()
        screen = status({**env, **replicas})
        service, *shown_lines = storage_lines(screen)
        assert service.split()[2] == "RED", screen
        assert any("replica 1: not answering" in line for line in shown_lines), screen
        assert any(line.split()[:2] == ["#1", "down"] for line in shown_lines), screen
        wait_for(
            lambda: monitored(monitor, "pipeline_service_healthy") == 0,
            30,
            "the monitor to see a replica missing",
        )
        assert monitored(monitor, "pipeline_service_up") == 1  # the other one answers
    finally:
        assert monitor.stop() == 0, monitor.log()
        for member in members:
            assert member.stop() == 0, member.log()
