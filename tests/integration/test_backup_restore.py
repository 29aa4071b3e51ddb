"""Backup and restore as the README's runbook says: `pg_dump` while the pipeline runs, restore
into a fresh database, start the consumers against it. Offsets live in the same database as the
data, so the restored consumers resume from the backup's offsets and the tables converge to
those of the run that was never interrupted."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from db.bootstrap import bootstrap
from db.migrate import migrate
from infra.postgres import client_program
from shared.kafka import Topics
from shared.settings import KafkaSettings, PostgresSettings
from tests.integration.analytics_run import VALUE_COLUMNS
from tests.integration.bar_stream import (
    drained,
    end_offsets,
    publish_bars,
    random_walk_bars,
    stored_bars,
    stored_offsets,
)
from tests.integration.processes import FAST_MEMBER, ServiceProcess, storage_member, wait_for

SYMBOLS = [
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "GOOG",
    "META",
    "TSLA",
    "SPY",
    "QQQ",
    "IWM",
    "JPM",
    "BAC",
]
INDICATORS = (
    f"SELECT symbol, interval, ts, {', '.join(VALUE_COLUMNS)} FROM indicators "  # noqa: S608
    "ORDER BY symbol, interval, ts"
)


@pytest.fixture
def restored(pg_settings: PostgresSettings) -> Iterator[PostgresSettings]:
    """An empty database beside the test's own, dropped afterwards."""
    target = pg_settings.model_copy(update={"dbname": f"{pg_settings.dbname}_restored"})
    admin = pg_settings.conninfo(dbname="postgres")
    name = sql.Identifier(target.dbname)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    yield target
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def analytics_member(env: dict[str, str], log_dir: Path, group: str) -> ServiceProcess:
    return ServiceProcess(
        "analytics.consumer", env, log_dir, CONSUMER_GROUP_ANALYTICS=group, **FAST_MEMBER
    )


def test_a_backup_taken_while_running_restores_and_catches_up_to_the_same_tables(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    restored: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    topic = topics.market_bars
    bars = random_walk_bars(SYMBOLS, 80, seed=11)
    storage_group, analytics_group = f"{group}-storage", f"{group}-analytics"
    groups = (storage_group, analytics_group)
    running = [
        storage_member(service_env, tmp_path, storage_group).start(),
        analytics_member(service_env, tmp_path, analytics_group).start(),
    ]
    dump = tmp_path / "pipeline.dump"
    try:
        publish_bars(kafka_settings, topic, bars[: len(bars) // 2])
        wait_for(
            lambda: all(drained(pg_settings, kafka_settings, g, topic) for g in groups),
            90,
            "the first half",
        )
        # The backup, taken while both consumers run; the second half arrives after it, so
        # the restored database is behind Kafka by exactly that much.
        subprocess.run(
            [client_program("pg_dump"), "--format=custom", f"--file={dump}",
             f"--dbname={pg_settings.conninfo()}"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        publish_bars(kafka_settings, topic, bars[len(bars) // 2 :])
        wait_for(
            lambda: all(drained(pg_settings, kafka_settings, g, topic) for g in groups),
            90,
            "the uninterrupted run",
        )
    finally:
        for member in running:
            assert member.stop() == 0, member.log()
    # The runbook: restore into a fresh database, migrate (nothing pending), bootstrap the roles.
    subprocess.run(
        [client_program("pg_restore"), "--exit-on-error", f"--dbname={restored.conninfo()}",
         str(dump)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert migrate(restored.conninfo()) == []
    bootstrap(restored, restored.dbname)
    behind = sum(end_offsets(kafka_settings, topic).values()) - sum(
        stored_offsets(restored, storage_group, topic).values()
    )
    restored_env = {**service_env, "POSTGRES_DBNAME": restored.dbname}
    resumed = [
        storage_member(restored_env, tmp_path, storage_group).start(),
        analytics_member(restored_env, tmp_path, analytics_group).start(),
    ]
    try:
        wait_for(
            lambda: all(drained(restored, kafka_settings, g, topic) for g in groups),
            90,
            "the restored database to catch up",
        )
        conflicts = sum(m.metrics()["pipeline_upsert_conflicts_total"] for m in resumed)
    finally:
        for member in resumed:
            assert member.stop() == 0, member.log()
    assert stored_bars(restored) == stored_bars(pg_settings)
    assert len(stored_bars(restored)) == len(bars)
    with (
        psycopg.connect(restored.conninfo()) as after,
        psycopg.connect(pg_settings.conninfo()) as before,
    ):
        assert after.execute(INDICATORS).fetchall() == before.execute(INDICATORS).fetchall()
    assert conflicts == 0  # resumed at the backup's offsets: nothing written twice
    assert behind == len(bars) - len(bars) // 2  # the backup was behind Kafka
