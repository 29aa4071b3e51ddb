"""docker-compose.yml agrees with the code: hostnames, the registered services, health ports.

And with the Docker user's first run: `.env` reaches every pipeline container without breaking
the compose network's addresses, host ports are variables, one image, bounded restarts, and the
services that need API keys are opt-in profiles.
"""

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
from shared.settings import (
    _ENV_NAMES,
    HealthSettings,
    build,
    bundled_recordings,
    load_settings,
)
from tests.conftest import REPO_ROOT

COMPOSE: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SETUP = "setup"
# The image built from our Dockerfile (by setup, the one service that builds it).
OUR_IMAGE = SERVICES[SETUP]["image"]
# Containers of our image that run one pipeline service each.
PIPELINE = sorted(
    name for name, spec in SERVICES.items() if spec.get("image") == OUR_IMAGE and name != SETUP
)
OURS = [*PIPELINE, SETUP]
# `${VAR:-default}` / `${VAR-default}` / `${VAR}`, as compose fills them with nothing set.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
# Services that cannot work without an API key (README, "API keys"): opt-in, by profile.
NEEDS_KEY = {
    "producer-news": ("news", "FINNHUB_API_KEY"),
    "producer-macro": ("macro", "FRED_API_KEY"),
}
# Prometheus and Grafana: opt-in too (`--profile monitoring`), checked in tests/unit/infra/.
MONITORING = {"prometheus", "grafana"}
# What `docker compose up` starts with no --profile: it must come up healthy without any key.
DEFAULT_SET = sorted(name for name, spec in SERVICES.items() if not spec.get("profiles"))
ENV_EXAMPLE = (REPO_ROOT / ".env.example").read_text()
# .env.example's section of variables compose reads itself (not pipeline settings).
COMPOSE_SECTION_HEADER = "# === docker compose only"


def compose_name(service: Service) -> str:
    """The compose service that runs a registered service: its name with dashes."""
    return service.name.replace(".", "-")


REGISTERED = {compose_name(service): service for service in all_services()}


def modules_of(command: list[str] | str) -> list[str]:
    """The `-m MODULE` arguments of a compose command (exec form or `sh -c "…"`)."""
    words = " ".join(command).split() if isinstance(command, list) else command.split()
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word == "-m"]


def filled(value: str) -> str:
    """A compose value with every `${VAR…}` as compose fills it when nothing sets VAR."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def environment_of(service: str) -> dict[str, str]:
    """The service's environment as its container sees it when the host sets none of the vars."""
    env = SERVICES[service].get("environment", {})
    assert isinstance(env, dict), f"{service}: use the mapping form of `environment`"
    return {
        name: filled(str(value))
        for name, value in env.items()
        if value is not None  # a bare `NAME:` passes the host's value through: unset here
    }


def dotenv_values(text: str) -> dict[str, str]:
    """`NAME=value` lines of a `.env`, as compose's env_file reads the simple ones."""
    return dict(
        line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Z][A-Z0-9_]*=", line)
    )


def variables_in(node: object) -> set[str]:
    """Every `${VAR…}` compose fills in a parsed compose file's values (comments are gone)."""
    if isinstance(node, dict):
        return set().union(*(variables_in(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(variables_in(value) for value in node))
    return {match.group(1) for match in INTERPOLATION.finditer(str(node))}


def compose_section() -> str:
    """The compose-only part of .env.example (to the next `# ===` section or the end)."""
    assert COMPOSE_SECTION_HEADER in ENV_EXAMPLE, ".env.example has no docker compose section"
    section = ENV_EXAMPLE.split(COMPOSE_SECTION_HEADER, 1)[1]
    return section.split("\n# ===", 1)[0]


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
    env = SERVICES[service].get("environment", {})  # Prometheus has none
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
    assert modules_of(SERVICES[SETUP]["command"]) == ["db", "db", "shared.topic_setup"]
    assert "python -m db migrate && python -m db bootstrap &&" in SERVICES[SETUP]["command"][-1]
    assert SERVICES[SETUP]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }


@pytest.mark.parametrize("service", PIPELINE)
def test_services_wait_for_setup_and_restart(service: str) -> None:
    spec = SERVICES[service]
    assert spec["depends_on"][SETUP] == {"condition": "service_completed_successfully"}
    assert spec["command"][:2] == ["python", "-m"] and len(spec["command"]) == 3


@pytest.mark.parametrize("service", PIPELINE)
def test_restarts_are_bounded(service: str) -> None:
    # A settings error must end in an exited container, not a restart loop: compose cannot
    # filter on exit codes, so the only bound is a retry count.
    policy = re.fullmatch(r"on-failure:(\d+)", SERVICES[service]["restart"])
    assert policy and 1 <= int(policy.group(1)) <= 5, SERVICES[service]["restart"]


@pytest.mark.parametrize("service", OURS)
def test_pipeline_containers_read_the_optional_dotenv(service: str) -> None:
    assert SERVICES[service]["env_file"] == [{"path": ".env", "required": False}]


@pytest.mark.parametrize("service", OURS)
def test_a_dotenv_for_make_run_does_not_break_compose(
    service: str, container_env: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compose: env_file first, `environment:` wins. A `.env` copied from .env.example for
    # `make run` (local stack addresses, LOCAL_STACK=auto) plus other health ports.
    dotenv = dotenv_values(ENV_EXAMPLE) | {"HEALTH_BASE_PORT": "28080", "HEALTH_REPLICA_INDEX": "1"}
    assert dotenv["POSTGRES_PORT"] == "15432" and dotenv["LOCAL_STACK"] == "auto"
    for name, value in dotenv.items():
        monkeypatch.setenv(name, value)
    container_env(service)
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "kafka:19092"
    assert (settings.postgres.host, settings.postgres.port) == ("postgres", 5432)
    assert settings.stack.local_stack == "off"
    assert str(settings.source.replay_dir) == "/app/recordings"
    if service in REGISTERED:
        probe = " ".join(SERVICES[service]["healthcheck"]["test"])
        port = health_port(settings.health, REGISTERED[service].name)
        assert f"127.0.0.1:{port}/healthz" in probe


def test_one_image_built_once() -> None:
    built = sorted(name for name, spec in SERVICES.items() if "build" in spec)
    assert built == [SETUP], f"only {SETUP} builds the image, so it is built once: {built}"
    assert re.fullmatch(r"market-pipeline:\$\{PIPELINE_IMAGE_TAG:-latest\}", OUR_IMAGE)
    # Every service that runs a registered module runs our image.
    assert set(REGISTERED) <= set(PIPELINE)


def test_published_ports_are_variables_on_localhost() -> None:
    published = {name: port for name, spec in SERVICES.items() for port in spec.get("ports", [])}
    assert set(published) >= {"kafka", "postgres"}
    section = compose_section()
    for name, port in published.items():
        found = re.fullmatch(r"127\.0\.0\.1:\$\{(\w+_HOST_PORT):-(\d+)\}:(\d+)", str(port))
        assert found, f"{name}: publish as 127.0.0.1:${{NAME_HOST_PORT:-port}}:port, got {port}"
        variable, default, _ = found.groups()
        assert f"# {variable}={default}" in section, f"{variable} not in .env.example's section"


def test_kafka_advertises_the_published_host_port() -> None:
    # A host client bootstraps on the published port and reconnects to the advertised one.
    found = re.fullmatch(r"127\.0\.0\.1:(\$\{\w+:-\d+\}):(\d+)", SERVICES["kafka"]["ports"][0])
    assert found
    host, container = found.groups()
    env = SERVICES["kafka"]["environment"]
    assert f"PLAINTEXT_HOST://:{container}" in env["KAFKA_LISTENERS"]
    assert f"PLAINTEXT_HOST://localhost:{host}" in env["KAFKA_ADVERTISED_LISTENERS"]
    # Inside the container the advertised host port may lead nowhere: check the internal one.
    assert SERVICES["kafka"]["healthcheck"]["test"][-1] == "kafka:19092"


def test_services_that_need_a_key_are_opt_in_profiles() -> None:
    for service, (profile, key) in NEEDS_KEY.items():
        assert SERVICES[service].get("profiles") == [profile], f"{service} needs {key}: opt-in"
    assert not set(NEEDS_KEY) & set(DEFAULT_SET)
    # Everything else runs by default: the pipeline without keys.
    assert set(DEFAULT_SET) == set(SERVICES) - set(NEEDS_KEY) - MONITORING


def test_up_wait_accepts_the_finished_setup() -> None:
    # `docker compose up --wait` fails on an exited one-shot unless a long-running service of
    # the same set waits for it to complete.
    waiting = [
        name
        for name in DEFAULT_SET
        if SERVICES[name].get("depends_on", {}).get(SETUP, {}).get("condition")
        == "service_completed_successfully"
    ]
    assert waiting


def test_every_compose_variable_is_documented() -> None:
    settings = {
        (prefix + name).upper()
        for model, prefix in _ENV_NAMES.items()
        for name in model.model_fields
    }
    section = compose_section()
    for name in sorted(variables_in(COMPOSE)):
        if name in settings:
            assert re.search(rf"^#? ?{name}=", ENV_EXAMPLE, re.MULTILINE), name
        else:  # compose's own: in the compose section, never mistaken for a setting
            assert re.search(rf"^# {name}=", section, re.MULTILINE), f"{name}: not documented"


def test_the_image_installs_only_the_runtime_requirements() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    instructions = [
        line for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert "COPY requirements.txt ." in instructions
    installs = [line for line in instructions if "pip install" in line]
    # Twice: the stage compiling the hot path, and the image.
    assert installs == ["RUN pip install -r requirements.txt"] * 2
    assert not [line for line in instructions if "requirements-dev" in line]


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
