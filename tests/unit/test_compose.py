"""docker-compose.yml agrees with the code: hostnames, the registered services, health ports."""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from shared.health import health_port
from shared.services import Service, all_services
from shared.settings import HealthSettings, build, bundled_recordings, load_settings
from tests.conftest import REPO_ROOT

COMPOSE: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SETUP = "setup"
# Containers built from our Dockerfile that run one pipeline service each.
PIPELINE = sorted(name for name, spec in SERVICES.items() if "build" in spec and name != SETUP)
OURS = [*PIPELINE, SETUP]
# `${VAR:-default}` / `${VAR-default}` / `${VAR}`, as compose fills them with nothing set.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def compose_name(service: Service) -> str:
    """The compose service that runs a registered service: its name with dashes."""
    return service.name.replace(".", "-")


REGISTERED = {compose_name(service): service for service in all_services()}


def modules_of(command: list[str] | str) -> list[str]:
    """The `-m MODULE` arguments of a compose command (exec form or `sh -c "…"`)."""
    words = " ".join(command).split() if isinstance(command, list) else command.split()
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word == "-m"]


def environment_of(service: str) -> dict[str, str]:
    """The service's environment as its container sees it when the host sets none of the vars."""
    env = SERVICES[service].get("environment", {})
    assert isinstance(env, dict), f"{service}: use the mapping form of `environment`"
    return {
        name: INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))
        for name, value in env.items()
        if value is not None  # a bare `NAME:` passes the host's value through: unset here
    }


@pytest.fixture
def container_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], None]:
    """Make this process's environment exactly a service's container environment."""
    monkeypatch.chdir(tmp_path)  # no developer `.env` leaks in
    for name in list(os.environ):  # nor tests/conftest.py's test-stack addresses, nor the shell's
        monkeypatch.delenv(name)

    def apply(service: str) -> None:
        for name, value in environment_of(service).items():
            monkeypatch.setenv(name, value)

    return apply


def test_there_are_pipeline_services() -> None:
    assert PIPELINE, "no service is built from the Dockerfile"


@pytest.mark.parametrize("service", OURS)
def test_settings_point_at_the_compose_hosts(
    service: str, container_env: Callable[[str], None]
) -> None:
    container_env(service)
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "kafka:19092"
    assert (settings.postgres.host, settings.postgres.port) == ("postgres", 5432)
    assert settings.stack.local_stack == "off"
    assert settings.health.host == "0.0.0.0"  # noqa: S104 (the healthcheck reaches it in-container)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_environment_values_are_strings(service: str) -> None:
    # YAML 1.1 reads `off`, `no` and `false` as booleans: a value must be quoted to stay a word.
    env = SERVICES[service]["environment"]
    assert not [name for name, value in env.items() if isinstance(value, bool)]


@pytest.mark.parametrize("service", OURS)
def test_commands_name_runnable_modules(service: str) -> None:
    modules = modules_of(SERVICES[service]["command"])
    assert modules, f"{service}: command runs no `python -m MODULE`"
    for module in modules:
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, f"{service}: no module {module}"
        if spec.submodule_search_locations is not None:  # a package runs its __main__
            assert importlib.util.find_spec(f"{module}.__main__"), f"{module} has no __main__"
        else:
            assert 'if __name__ == "__main__":' in Path(spec.origin).read_text()


def test_setup_migrates_then_creates_topics() -> None:
    assert modules_of(SERVICES[SETUP]["command"]) == ["db", "shared.topic_setup"]
    assert SERVICES[SETUP]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }


@pytest.mark.parametrize("service", PIPELINE)
def test_services_wait_for_setup_and_restart(service: str) -> None:
    spec = SERVICES[service]
    assert spec["depends_on"][SETUP] == {"condition": "service_completed_successfully"}
    assert spec["restart"] == "unless-stopped"
    assert spec["command"][:2] == ["python", "-m"] and len(spec["command"]) == 3


def test_compose_runs_exactly_the_registered_services() -> None:
    in_compose = {name: modules_of(SERVICES[name]["command"])[0] for name in PIPELINE}
    assert in_compose == {name: service.module for name, service in REGISTERED.items()}


@pytest.mark.parametrize("service", PIPELINE)
def test_replay_reads_the_recordings_copied_into_the_image(service: str) -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    workdir = re.search(r"^WORKDIR\s+(\S+)", dockerfile, re.MULTILINE)
    assert workdir and re.search(r"^COPY \. \.$", dockerfile, re.MULTILINE)
    in_image = PurePosixPath(environment_of(service)["REPLAY_DIR"])
    relative = in_image.relative_to(workdir.group(1))
    assert REPO_ROOT / relative == bundled_recordings()
    ignored = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    paths = (str(relative), str(relative / "yahoo" / "chart.json"))
    assert not [pattern for pattern in ignored for path in paths if fnmatch.fnmatch(path, pattern)]


@pytest.mark.parametrize("service", ["kafka", "postgres"])
def test_backing_services_have_healthchecks(service: str) -> None:
    test = SERVICES[service]["healthcheck"]["test"]
    assert test and test[0] in ("CMD", "CMD-SHELL")


def test_kafka_is_the_documented_single_node_broker() -> None:
    env = SERVICES["kafka"]["environment"]
    assert SERVICES["kafka"]["image"] == "apache/kafka:4.1.1"
    assert "PLAINTEXT://kafka:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


@pytest.mark.parametrize("service", PIPELINE)
def test_healthcheck_asks_the_service_health_port(
    service: str, container_env: Callable[[str], None]
) -> None:
    container_env(service)
    probe = " ".join(SERVICES[service]["healthcheck"]["test"])
    found = re.search(r"http://(?:127\.0\.0\.1|localhost):(\d+)/healthz", probe)
    assert found, f"{service}: healthcheck does not GET /healthz: {probe}"
    assert int(found.group(1)) == health_port(build(HealthSettings), REGISTERED[service].name)
