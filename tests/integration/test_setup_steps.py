"""Setup steps on the real servers: migrations, topic setup, and fail-fast on wrong settings."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    OffsetSpec,
    ResourceType,
)

from db.migrate import discover, migrate
from shared.errors import SettingsError, StorageError
from shared.kafka import Topics, delete_topics, ensure_topics
from shared.settings import KafkaSettings, PostgresSettings
from tests.conftest import REPO_ROOT
from tests.integration.stacks import TestStack


def run_module(module: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrations_applied_twice_change_nothing(pg_settings: PostgresSettings) -> None:
    # The fresh test database was copied from a migrated template: every file is recorded.
    assert migrate(pg_settings.conninfo()) == []
    with psycopg.connect(pg_settings.conninfo()) as conn:
        applied = [row[0] for row in conn.execute("SELECT filename FROM schema_migrations")]
    assert applied == [m.path.name for m in discover()]
    assert migrate(pg_settings.conninfo()) == []


def test_migrate_command_on_an_empty_database_then_again(
    pg_settings: PostgresSettings, service_env: dict[str, str]
) -> None:
    with psycopg.connect(pg_settings.conninfo()) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    first = run_module("db", "migrate", env=service_env)
    assert first.returncode == 0, first.stderr
    assert f"{len(discover())} migration(s) applied" in first.stdout
    second = run_module("db", "migrate", env=service_env)
    assert second.returncode == 0 and "0 migration(s) applied" in second.stdout


def test_a_failing_migration_rolls_back_and_is_named(
    pg_settings: PostgresSettings, tmp_path: Path
) -> None:
    for migration in discover():
        (tmp_path / migration.path.name).write_bytes(migration.path.read_bytes())
    (tmp_path / "9998_good_then_bad.sql").write_text(
        "CREATE TABLE half_done (x int);\nSELECT no_such_column FROM price_bars;\n"
    )
    with pytest.raises(StorageError, match="9998_good_then_bad.sql"):
        migrate(pg_settings.conninfo(), tmp_path)
    with psycopg.connect(pg_settings.conninfo()) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone()[0] is None
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert "9998" not in versions


def test_topic_setup_is_idempotent_and_refuses_other_partition_counts(stack: TestStack) -> None:
    settings = KafkaSettings(topic_prefix=f"setup{uuid.uuid4().hex[:8]}.")
    topics = Topics(settings.topic_prefix)
    assert sorted(ensure_topics(settings, topics)) == sorted(topics.partitions(settings))
    assert ensure_topics(settings, topics) == []
    metadata = AdminClient(settings.client_config()).list_topics(timeout=10).topics
    assert len(metadata[topics.market_bars].partitions) == settings.partitions_market_bars
    other = settings.model_copy(update={"partitions_market_bars": 6})
    with pytest.raises(SettingsError, match=r"has 12 partitions, the settings say 6"):
        ensure_topics(other, topics)


@pytest.fixture
def prefix_topics(stack: TestStack) -> Iterator[tuple[KafkaSettings, Topics]]:
    """Settings with a fresh prefix whose topics this test creates; deleted after it."""
    settings = KafkaSettings(topic_prefix=f"layout{uuid.uuid4().hex[:8]}.")
    topics = Topics(settings.topic_prefix)
    yield settings, topics
    delete_topics(settings, topics)


def test_topic_setup_names_a_replication_factor_the_cluster_does_not_have(
    prefix_topics: tuple[KafkaSettings, Topics], service_env: dict[str, str]
) -> None:
    settings, topics = prefix_topics
    ensure_topics(settings, topics)
    env = {
        **service_env,
        "KAFKA_TOPIC_PREFIX": settings.topic_prefix,
        "KAFKA_REPLICATION_FACTOR": "3",
    }
    result = run_module("shared.topic_setup", env=env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("topic_setup:")]
    assert lines == [
        f"topic_setup: topic {topics.market_bars} has replication factor 1, the settings say 3"
        " (KAFKA_REPLICATION_FACTOR)"
    ], result.stderr


def test_a_topic_that_cannot_have_the_replication_factor_is_not_created(
    prefix_topics: tuple[KafkaSettings, Topics],
) -> None:
    settings, topics = prefix_topics
    three = settings.model_copy(update={"replication_factor": 3})
    with pytest.raises(SettingsError) as caught:
        ensure_topics(three, topics)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith("topic ") and "replication factor 3 (KAFKA_REPLICATION_FACTOR)" in line
    assert "broker" in line  # the cluster's own reason (its wording varies by version)


def test_topic_setup_names_a_min_insync_replicas_other_than_the_settings(
    prefix_topics: tuple[KafkaSettings, Topics],
) -> None:
    settings, topics = prefix_topics
    ensure_topics(settings, topics)
    admin = AdminClient(settings.client_config())
    alter = ConfigResource(
        ResourceType.TOPIC,
        topics.alerts_events,
        incremental_configs=[
            ConfigEntry("min.insync.replicas", "2", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for future in admin.incremental_alter_configs([alter]).values():
        future.result(timeout=10)
    # The broker applies an altered topic config a moment after it confirms the change.
    described = ConfigResource(ResourceType.TOPIC, topics.alerts_events)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        (future,) = admin.describe_configs([described]).values()
        if future.result(timeout=10)["min.insync.replicas"].value == "2":
            break
        time.sleep(0.2)
    with pytest.raises(SettingsError) as caught:
        ensure_topics(settings, topics)
    assert str(caught.value) == (
        f"topic {topics.alerts_events} has min.insync.replicas=2, the settings say 1"
        " (KAFKA_MIN_INSYNC_REPLICAS)"
    )


def test_auto_topic_creation_is_off(kafka_settings: KafkaSettings) -> None:
    from confluent_kafka import Producer

    missing = f"{kafka_settings.topic_prefix}never.created"
    producer = Producer({**kafka_settings.client_config(), "message.timeout.ms": 2000})
    producer.produce(missing, b"x")
    producer.flush(5)
    topics = AdminClient(kafka_settings.client_config()).list_topics(timeout=10).topics
    assert missing not in topics


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1", "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1"),
        ("KAFKA_BOOTSTRAP_SERVERS", "no-port-here", "KAFKA_BOOTSTRAP_SERVERS"),
        ("POSTGRES_PORT", "1", "POSTGRES_PORT"),
        # Services log in as the writer (POSTGRES_PASSWORD is the owner's: migrations).
        ("POSTGRES_WRITER_PASSWORD", "wrong-password", "POSTGRES_WRITER_PASSWORD"),
    ],
)
def test_wrong_addresses_fail_fast_with_one_line(
    setting: str, value: str, named: str, service_env: dict[str, str]
) -> None:
    env = {**service_env, setting: value, "KAFKA_CONNECT_TIMEOUT_S": "3", "HEALTH_PORT": "0"}
    result = run_module("consumer.storage", env=env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("consumer.storage:")]
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert "wrong-password" not in result.stderr


def test_health_port_in_use_names_the_setting(service_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_module("consumer.storage", env={**service_env, "HEALTH_PORT": str(port)})
    assert result.returncode == 2
    assert "HEALTH_PORT" in result.stderr and str(port) in result.stderr
    assert "Traceback" not in result.stderr


def test_created_topics_are_ready_when_the_setup_returns(stack: TestStack) -> None:
    """The next step after the setup (a service, a health check, a test) reads the topics at
    once: each one's config and every partition's offsets answer, on the first try. Before the
    broker had applied its own creation, these got UNKNOWN_TOPIC_OR_PART / NOT_LEADER."""
    for _ in range(3):
        settings = KafkaSettings(topic_prefix=f"ready{uuid.uuid4().hex[:8]}.")
        topics = Topics(settings.topic_prefix)
        try:
            assert ensure_topics(settings, topics)
            wanted = topics.partitions(settings)
            admin = AdminClient(settings.client_config())
            described = admin.describe_configs(
                [ConfigResource(ResourceType.TOPIC, name) for name in wanted]
            )
            for future in described.values():
                assert future.result(timeout=10)["retention.ms"].value
            latest = admin.list_offsets(
                {
                    TopicPartition(name, p): OffsetSpec.latest()
                    for name, count in wanted.items()
                    for p in range(count)
                }
            )
            assert [future.result(timeout=10).offset for future in latest.values()] == [0] * sum(
                wanted.values()
            )
        finally:
            delete_topics(settings, topics)


def test_two_setups_at_once_with_different_layouts_do_not_both_pass(
    prefix_topics: tuple[KafkaSettings, Topics],
) -> None:
    """Two setups racing: both see no topics, both create; the one that loses gets
    TOPIC_ALREADY_EXISTS and must still check the winner's layout, not take it on trust."""
    settings, topics = prefix_topics
    settings_two = settings.model_copy(update={"min_insync_replicas": 2})
    start = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def setup(which: int, these: KafkaSettings) -> None:
        start.wait()
        try:
            ensure_topics(these, topics)
            outcomes[which] = "ok"
        except SettingsError as exc:
            outcomes[which] = str(exc)

    threads = [
        threading.Thread(target=setup, args=(n, s)) for n, s in enumerate((settings, settings_two))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == [0, 1]
    assert list(outcomes.values()).count("ok") == 1, outcomes
    (refusal,) = (line for line in outcomes.values() if line != "ok")
    assert "min.insync.replicas" in refusal and "KAFKA_MIN_INSYNC_REPLICAS" in refusal, refusal
