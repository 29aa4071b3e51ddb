"""The servers integration tests run against: the local test stack, or Docker containers.

`TEST_STACK=local` (default) starts infra's test profile (real Kafka from Maven jars, a private
Postgres cluster). `TEST_STACK=docker` uses testcontainers where a Docker engine is available.
`TEST_STACK=running` uses the servers the test addresses name, already running (another checkout's
test stack, say): nothing is started, and the `serial` tests, which stop a server, refuse to run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest

from tests.conftest import REPO_ROOT

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
POSTGRES_IMAGE = "postgres:16"


class TestStack(Protocol):
    __test__ = False  # a protocol, not a test class, whatever its name says to pytest

    def stop_postgres(self) -> None: ...

    def start_postgres(self) -> None: ...

    def stop_kafka(self) -> None: ...

    def start_kafka(self) -> None: ...

    def close(self) -> None: ...


class LocalStack:
    """infra's `test` profile, or the servers the environment names (LOCAL_STACK rules)."""

    def __init__(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "infra.stack", "up", "--profile", "test"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            pytest.fail(f"test stack did not start:\n{result.stdout}\n{result.stderr}")

    def stop_postgres(self) -> None:
        from infra.postgres import stop_postgres

        if not stop_postgres("test"):
            pytest.fail(
                "the local test Postgres was not running (is POSTGRES_PORT another server?)"
            )

    def start_postgres(self) -> None:
        from infra.postgres import start_postgres

        start_postgres("test")

    def stop_kafka(self) -> None:
        from infra.kafka_broker import stop_kafka

        if not stop_kafka("test"):
            pytest.fail("the local test Kafka was not running (KAFKA_BOOTSTRAP_SERVERS another?)")

    def start_kafka(self) -> None:
        from infra.kafka_broker import start_kafka

        start_kafka("test")

    def close(self) -> None:
        """The local stack stays up for the next run (a second `make test` starts in seconds)."""


class RunningStack:
    """Servers someone else started and keeps: never stopped from here."""

    def stop_postgres(self) -> None:
        pytest.fail("TEST_STACK=running: this test stops PostgreSQL, which is not ours to stop")

    def start_postgres(self) -> None:
        pytest.fail("TEST_STACK=running: PostgreSQL is not ours to start")

    def stop_kafka(self) -> None:
        pytest.fail("TEST_STACK=running: this test stops Kafka, which is not ours to stop")

    def start_kafka(self) -> None:
        pytest.fail("TEST_STACK=running: Kafka is not ours to start")

    def close(self) -> None:
        """Not ours to stop."""


@dataclass
class DockerStack:
    """Kafka (KRaft) and Postgres containers; the environment is pointed at them."""

    containers: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        from testcontainers.community.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        postgres = PostgresContainer(
            POSTGRES_IMAGE, username="pipeline", password="pipeline", dbname="pipeline"
        ).start()
        self.containers.append(postgres)
        kafka = (
            KafkaContainer(KAFKA_IMAGE)
            .with_kraft()
            .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
            .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
            .start(timeout=120)
        )
        self.containers.append(kafka)
        os.environ.update(
            KAFKA_BOOTSTRAP_SERVERS=kafka.get_bootstrap_server(),
            POSTGRES_HOST=postgres.get_container_host_ip(),
            POSTGRES_PORT=str(postgres.get_exposed_port(5432)),
            POSTGRES_USER="pipeline",
            POSTGRES_PASSWORD="pipeline",
            POSTGRES_DBNAME="pipeline",
            LOCAL_STACK="off",
        )
        self._postgres, self._kafka = postgres, kafka

    def stop_postgres(self) -> None:
        # Paused, not stopped: a restarted container may come back on another host port.
        self._postgres.get_wrapped_container().pause()

    def start_postgres(self) -> None:
        self._postgres.get_wrapped_container().unpause()

    def stop_kafka(self) -> None:
        self._kafka.get_wrapped_container().pause()

    def start_kafka(self) -> None:
        self._kafka.get_wrapped_container().unpause()

    def close(self) -> None:
        for container in reversed(self.containers):
            container.stop()


def start_test_stack() -> TestStack:
    kind = os.environ.get("TEST_STACK", "local")
    if kind == "local":
        return LocalStack()
    if kind == "docker":
        return DockerStack()
    if kind == "running":
        return RunningStack()
    pytest.fail(f"TEST_STACK={kind!r}: expected local, docker or running")
