"""The scrape configurations come from the service registry: every service and replica, on the
ports the services themselves bind (shared.health), locally and in compose."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import prometheus
from infra.prometheus_config import (
    COMPOSE_HEALTH_BASE_PORT,
    compose_config,
    local_config,
    local_targets,
)
from shared.errors import SettingsError
from shared.health import health_port
from shared.services import all_services
from shared.settings import HealthSettings, PrometheusSettings
from tests.conftest import REPO_ROOT

COMPOSE: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_every_replica_is_scraped_where_the_service_binds() -> None:
    replicas = {"consumer.storage": 3, "analytics.consumer": 2}
    config = local_config(
        local_targets(all_services(), "127.0.0.1", 28080, replicas), ["/r.yml"], 15
    )
    by_job = jobs(config)
    assert list(by_job) == [service.name for service in all_services()]
    for service in all_services():
        bound = [
            health_port(HealthSettings(base_port=28080, replica_index=index), service.name)
            for index in range(replicas.get(service.name, 1))
        ]
        expected = {str(index): f"127.0.0.1:{port}" for index, port in enumerate(bound)}
        static = by_job[service.name]["static_configs"]
        assert {s["labels"]["replica"]: s["targets"][0] for s in static} == expected
    assert config["rule_files"] == ["/r.yml"]


def test_intervals_are_prometheus_durations() -> None:
    fast = local_config([], [], 0.5)["global"]
    assert fast == {
        "scrape_interval": "500ms",
        "scrape_timeout": "500ms",
        "evaluation_interval": "500ms",
    }
    assert local_config([], [], 60)["global"]["scrape_timeout"] == "10s"


def test_the_make_monitor_config_follows_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTH_HOST", "0.0.0.0")  # noqa: S104 (a wildcard bind)
    monkeypatch.setenv("HEALTH_BASE_PORT", "30000")
    monkeypatch.setenv("PROMETHEUS_REPLICAS", "consumer.storage=2")
    text = prometheus.local_config_text(HealthSettings(), PrometheusSettings())
    config = json.loads(text)
    targets = [s["targets"][0] for job in config["scrape_configs"] for s in job["static_configs"]]
    storage = next(s for s in all_services() if s.name == "consumer.storage")
    assert f"127.0.0.1:{30000 + storage.port_offset}" in targets
    assert f"127.0.0.1:{30100 + storage.port_offset}" in targets
    assert len(targets) == len(all_services()) + 1
    assert config["rule_files"] == [str(prometheus.RULES)]
    assert prometheus.RULES.is_file()


def test_a_fixed_health_port_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTH_PORT", "18090")
    with pytest.raises(SettingsError, match="unset HEALTH_PORT"):
        prometheus.local_config_text(HealthSettings(), PrometheusSettings())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("consumer.storag=2", "unknown service(s) consumer.storag"),
        ("consumer.storage", "expected SERVICE=COUNT"),
        ("consumer.storage=two", "expected a whole number"),
        ("consumer.storage=0", "below 1"),
    ],
)
def test_bad_replica_counts_stop_with_one_line(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROMETHEUS_REPLICAS", value)
    assert prometheus.main(["config"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PROMETHEUS_REPLICAS" in err and message in err


def test_the_compose_config_in_the_repository_is_the_generated_one() -> None:
    shipped = prometheus.COMPOSE_CONFIG.read_text()
    assert shipped == prometheus.compose_config_text(), (
        "infra/prometheus/prometheus.compose.yml is out of date: "
        "python -m infra.prometheus compose-config > infra/prometheus/prometheus.compose.yml"
    )
    assert yaml.safe_load(shipped) == compose_config(all_services())


def test_compose_targets_are_the_containers_healthcheck_ports() -> None:
    services = COMPOSE["services"]
    env = services["producer-market"]["environment"]
    assert int(env["HEALTH_BASE_PORT"]) == COMPOSE_HEALTH_BASE_PORT
    for job in compose_config(all_services())["scrape_configs"]:
        (sd,) = job["dns_sd_configs"]
        (host,) = sd["names"]
        assert host in services, f"{job['job_name']}: no compose service {host}"
        probe = " ".join(services[host]["healthcheck"]["test"])
        port = re.search(r"127\.0\.0\.1:(\d+)/healthz", probe)
        assert port and int(port.group(1)) == sd["port"], host


def test_compose_prometheus_mounts_the_generated_config_and_the_rules() -> None:
    spec = COMPOSE["services"]["prometheus"]
    mounts = {
        target: REPO_ROOT / source
        for source, target, *_ in (volume.split(":") for volume in spec["volumes"])
        if source.startswith("./")
    }
    config_flag = next(a for a in spec["command"] if a.startswith("--config.file="))
    config_path = config_flag.split("=", 1)[1]
    assert mounts[config_path] == prometheus.COMPOSE_CONFIG
    (rules,) = compose_config(all_services())["rule_files"]
    assert mounts[rules] == prometheus.RULES
    assert spec["profiles"] == ["monitoring"]


def test_a_taken_port_is_refused_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("PROMETHEUS_PORT", str(taken.getsockname()[1]))
        with pytest.raises(SettingsError, match="is in use .*set PROMETHEUS_PORT"):
            prometheus.monitor(tmp_path / "prometheus", HealthSettings(), PrometheusSettings())
    assert not (tmp_path / "prometheus").exists()


def test_a_mistyped_setting_stops_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROMETHEUS_REPLICA", "consumer.storage=2")
    assert prometheus.main(["config"]) == 2
    assert capsys.readouterr().err == (
        "infra.prometheus: unknown setting PROMETHEUS_REPLICA: did you mean PROMETHEUS_REPLICAS?\n"
    )
