"""Every entry point as a process: `--help` without starting, a mistyped setting, LOG_LEVEL.

None of these needs Kafka or PostgreSQL: the addresses point at closed ports on purpose.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from shared.services import Service, all_services
from tests.conftest import REPO_ROOT
from tests.integration.processes import free_port

QUICK_S = 30  # a generous bound on a loaded machine; nothing here waits for a server


def closed_ports_env(**extra: str) -> dict[str, str]:
    """The environment with Kafka and PostgreSQL on ports nobody listens on."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(free_port()),
        "LOCAL_STACK": "off",
        "HEALTH_PORT": "0",
        **extra,
    }


def run(argv: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=QUICK_S
    )
    return result, time.monotonic() - started


@pytest.mark.parametrize("service", all_services(), ids=lambda service: service.name)
def test_help_exits_0_without_starting(service: Service) -> None:
    # A wrong setting too: --help reads no setting, connects nowhere, serves no port.
    env = closed_ports_env(MARKET_SYMBOL="TSLA", KAFKA_CONNECT_TIMEOUT_S="60")
    result, _ = run([sys.executable, "-m", service.module, "--help"], env)
    assert result.returncode == 0, result.stderr
    words = " ".join(result.stdout.split())  # argparse wraps lines
    assert f"python -m {service.module}" in words and service.description in words
    assert "started" not in result.stderr and result.stderr == ""


@pytest.mark.parametrize("module", ["db", "shared.topic_setup", "analytics.recompute"])
def test_setup_steps_and_tools_answer_help_too(module: str) -> None:
    result, _ = run([sys.executable, "-m", module, "--help"], closed_ports_env())
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert f"python -m {module}" in result.stdout


def test_start_pipeline_help_exits_0_without_starting() -> None:
    env = closed_ports_env(MARKET_SYMBOL="TSLA")
    result, _ = run([sys.executable, "start_pipeline.py", "--help"], env)
    assert result.returncode == 0, result.stderr
    assert "--services" in result.stdout and result.stderr == ""


def test_a_mistyped_setting_stops_a_service_with_one_line() -> None:
    result, _ = run(
        [sys.executable, "-m", "consumer.storage"], closed_ports_env(MARKET_SYMBOL="TSLA")
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "consumer.storage: unknown setting MARKET_SYMBOL: did you mean MARKET_SYMBOLS?"
    ]


def test_a_mistyped_setting_stops_start_pipeline_before_any_setup_step() -> None:
    result, _ = run([sys.executable, "start_pipeline.py"], closed_ports_env(MARKET_SYMBOL="TSLA"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "start_pipeline: unknown setting MARKET_SYMBOL: did you mean MARKET_SYMBOLS?"
    ]


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_log_level_debug_shows_debug_lines(level: str) -> None:
    env = closed_ports_env(LOG_LEVEL=level, KAFKA_CONNECT_TIMEOUT_S="1")
    result, _ = run([sys.executable, "-m", "consumer.storage"], env)
    assert result.returncode == 2  # no broker there: one line naming the setting
    debug = [line for line in result.stderr.splitlines() if " DEBUG " in line]
    if level == "DEBUG":
        assert any(" DEBUG consumer.storage shared.service: settings: " in line for line in debug)
    else:
        assert debug == []
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr.splitlines()[-1]


def test_an_unknown_exchange_stops_the_analytics_consumer_before_any_server() -> None:
    """Found at startup, not at the first bar (the calendar is read in a child process)."""
    env = closed_ports_env(ANALYTICS_EXCHANGE="NOPE")
    result, _ = run([sys.executable, "-m", "analytics.consumer"], env)
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith("analytics.consumer: ANALYTICS_EXCHANGE=NOPE: ") and "NOPE" in last, (
        result.stderr
    )
