"""A real Prometheus (Debian's package) for tests: start it on a config, ask its HTTP API."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from infra.prometheus import ensure_prometheus, prometheus_argv
from shared.errors import StackError
from tests.integration.processes import free_port, wait_for


def rules_firing_at_once(rules: Path, into: Path) -> Path:
    """A copy of a rules file with every `for:` cut to 0s: an alert fires at its first
    evaluation, so a test need not wait out the minutes an operator wants."""
    document = yaml.safe_load(rules.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    into.write_text(yaml.safe_dump(document))
    return into


@contextmanager
def running_prometheus(config: Path, workdir: Path) -> Iterator[str]:
    """Prometheus on a free port with `config`, its base URL while the block runs."""
    try:
        binary = ensure_prometheus()
    except StackError as exc:
        pytest.fail(f"Prometheus is needed for this test: {exc}", pytrace=False)
    port = free_port()
    argv = prometheus_argv(binary, config, workdir, "127.0.0.1", port)
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base) or process.poll() is not None, 60, "Prometheus")
        assert process.poll() is None, log_path.read_text()
        yield base
    finally:
        process.terminate()
        process.wait(30)


def _ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/-/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def api(base: str, path: str, **params: str) -> Any:
    """The `data` of a successful /api/v1 answer (a failed one fails the test)."""
    reply = requests.get(f"{base}/api/v1/{path}", params=params, timeout=5)
    body = reply.json()
    assert body["status"] == "success", body
    return body["data"]


def query(base: str, expr: str) -> list[dict[str, Any]]:
    return api(base, "query", query=expr)["result"]


def firing(base: str, alertname: str) -> list[dict[str, str]]:
    """The labels of each firing alert called `alertname`."""
    return [
        alert["labels"]
        for alert in api(base, "alerts")["alerts"]
        if alert["labels"]["alertname"] == alertname and alert["state"] == "firing"
    ]
