"""`make monitor`: Debian's Prometheus (installed when missing) scraping the local pipeline.

    python -m infra.prometheus                  # write the scrape config, run Prometheus (Ctrl-C)
    python -m infra.prometheus config           # print the local scrape config
    python -m infra.prometheus compose-config   # print infra/prometheus/prometheus.compose.yml

The scrape configuration comes from the service registry (infra/prometheus_config.py); the alert
rules an operator keeps are infra/prometheus/rules.yml.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from infra.host import apt_install, port_accepts, say
from infra.profiles import get_profile
from infra.prometheus_config import (
    HEADER,
    compose_config,
    local_config,
    local_targets,
    render,
)
from shared.errors import SettingsError, StackError
from shared.services import all_services
from shared.settings import (
    HealthSettings,
    PrometheusSettings,
    StackSettings,
    build,
    check_setting_names,
)

PACKAGE = "prometheus"
# Debian's package ships both; upstream tarballs name them the same.
PROMETHEUS = "prometheus"
PROMTOOL = "promtool"
RULES = Path(__file__).resolve().parent / "prometheus" / "rules.yml"
COMPOSE_CONFIG = RULES.parent / "prometheus.compose.yml"


def find_program(program: str) -> Path | None:
    found = shutil.which(program) or shutil.which(program, path="/usr/bin:/usr/sbin")
    return Path(found) if found else None


def ensure_program(program: str) -> Path:
    """`prometheus` or `promtool`; apt-get installs Debian's package first when it is missing
    (as root), else a StackError says what to install."""
    found = find_program(program)
    if found is not None:
        return found
    # Where services may start (not in a container with a policy-rc.d), the package starts its
    # own daemon on :9090; ours runs on PROMETHEUS_PORT beside it and leaves that one alone.
    apt_install("prometheus", [PACKAGE], f"{program} not found")
    found = find_program(program)
    if found is None:
        raise StackError(f"apt-get installed {PACKAGE} but no {program} is on PATH")
    return found


def ensure_prometheus() -> Path:
    return ensure_program(PROMETHEUS)


def ensure_promtool() -> Path:
    return ensure_program(PROMTOOL)


def prometheus_argv(binary: Path, config: Path, workdir: Path, host: str, port: int) -> list[str]:
    """Run one Prometheus on host:port with its TSDB under `workdir`. The lifecycle API lets a
    caller reload the rules without a restart (POST /-/reload)."""
    storage = workdir / "data"
    storage.mkdir(parents=True, exist_ok=True)
    return [
        str(binary),
        f"--config.file={config}",
        f"--storage.tsdb.path={storage}",
        f"--web.listen-address={host}:{port}",
        "--web.enable-lifecycle",
    ]


def scrape_host(health_host: str) -> str:
    """Where a service bound to HEALTH_HOST answers (a wildcard bind answers on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(  # noqa: S104
        health_host, health_host
    )
    return f"[{host}]" if ":" in host else host


def local_config_text(health: HealthSettings, prometheus: PrometheusSettings) -> str:
    """The scrape configuration of `make monitor`: every registered service and replica."""
    if health.port is not None:
        raise SettingsError(
            "HEALTH_PORT is set: services take HEALTH_BASE_PORT + their offset, which "
            "Prometheus scrapes; unset HEALTH_PORT"
        )
    targets = local_targets(
        all_services(), scrape_host(health.host), health.base_port, prometheus.replicas
    )
    return render(local_config(targets, [str(RULES)], prometheus.scrape_interval_s))


def compose_config_text() -> str:
    return render(compose_config(all_services()), HEADER)


def monitor(workdir: Path, health: HealthSettings, prometheus: PrometheusSettings) -> None:
    """Write the config under `workdir` and become Prometheus (exec) until Ctrl-C: signals reach
    it directly, and no child outlives this command."""
    text = local_config_text(health, prometheus)
    if port_accepts(prometheus.host, prometheus.port):
        raise SettingsError(
            f"{prometheus.host}:{prometheus.port} is in use (another Prometheus?); "
            "set PROMETHEUS_PORT"
        )
    binary = ensure_prometheus()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(text)
    argv = prometheus_argv(binary, config, workdir, prometheus.host, prometheus.port)
    say(
        f"prometheus: http://{prometheus.host}:{prometheus.port} (targets: /targets, alerts: "
        f"/alerts), config {config}, rules {RULES}; Ctrl-C stops it"
    )
    os.execv(argv[0], argv)  # noqa: S606 (the binary found above, fixed flags)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.prometheus", description=__doc__)
    parser.add_argument(
        "command", nargs="?", default="run", choices=("run", "config", "compose-config")
    )
    args = parser.parse_args(argv)
    if args.command == "compose-config":
        sys.stdout.write(compose_config_text())
        return 0
    try:
        check_setting_names()  # PROMETHEUS_REPLICA=… would silently scrape one replica
        health, prometheus = build(HealthSettings), build(PrometheusSettings)
        if args.command == "config":
            sys.stdout.write(local_config_text(health, prometheus))
            return 0
        # Beside the run profile's Kafka and PostgreSQL data: `make clean` deletes it too.
        workdir = get_profile("run", build(StackSettings)).root / "prometheus"
        monitor(workdir, health, prometheus)
        return 0  # not reached: monitor() execs Prometheus
    except (SettingsError, StackError) as exc:
        print(f"infra.prometheus: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
