"""Grafana's provisioning files hold together without a Docker engine: compose mounts files that
exist, the dashboards reference only provisioned datasources, panels are laid out on the grid,
and every metric a panel or an alert rule names is one the services export (docs/metrics.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

GRAFANA = REPO_ROOT / "infra" / "grafana"
COMPOSE: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SPEC = COMPOSE["services"]["grafana"]
DATASOURCES: list[dict[str, Any]] = yaml.safe_load(
    (GRAFANA / "provisioning" / "datasources" / "pipeline.yml").read_text()
)["datasources"]
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
GRID_WIDTH = 24


def mounts(spec: dict[str, Any]) -> dict[str, Path]:
    """Container path → repository path of the compose service's bind mounts."""
    found = {}
    for volume in spec["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[target] = REPO_ROOT / source
    return found


def panels_of(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_compose_mounts_point_at_files_that_exist() -> None:
    found = mounts(SPEC)
    assert found["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    for target, source in found.items():
        assert source.exists(), f"{target}: {source} does not exist"
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "pipeline.yml").read_text()
    )["providers"]
    for provider in providers:
        assert found[provider["options"]["path"]] == GRAFANA / "dashboards"
    home = SPEC["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    directory, _, name = home.rpartition("/")
    assert (found[directory] / name).is_file()
    assert SPEC["profiles"] == ["monitoring"]


def test_datasources_are_unique_and_their_variables_come_from_compose() -> None:
    uids = [source["uid"] for source in DATASOURCES]
    assert len(uids) == len(set(uids))
    assert sum(bool(source.get("isDefault")) for source in DATASOURCES) == 1
    text = (GRAFANA / "provisioning" / "datasources" / "pipeline.yml").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for name in re.findall(r"\$\{?([A-Z_]+)\}?", body):
        assert name in SPEC["environment"], f"{name} is not in the grafana container"
    by_type = {source["type"]: source for source in DATASOURCES}
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    postgres = by_type["grafana-postgresql-datasource"]
    assert postgres["url"] == "postgres:5432"
    assert (
        postgres["jsonData"]["database"]
        == COMPOSE["services"]["postgres"]["environment"]["POSTGRES_DB"]
    )
    # The password is a secret: only ever in secureJsonData, from the environment.
    assert postgres["secureJsonData"]["password"].startswith("$")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_datasource_a_dashboard_references_is_provisioned(path: Path) -> None:
    known = {source["uid"]: source["type"] for source in DATASOURCES}
    dashboard = load(path)
    references = [
        item["datasource"]
        for item in (
            *panels_of(dashboard),
            *(t for p in panels_of(dashboard) for t in p.get("targets", [])),
            *dashboard["templating"]["list"],
        )
        if "datasource" in item
    ]
    assert references
    for reference in references:
        assert known.get(reference["uid"]) == reference["type"], reference


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_are_on_the_grid_without_overlapping(path: Path) -> None:
    dashboard = load(path)
    ids = [panel["id"] for panel in panels_of(dashboard)]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels_of(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= GRID_WIDTH
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_panel_has_a_query(path: Path) -> None:
    dashboard = load(path)
    uids = {load(other)["uid"] for other in DASHBOARDS}
    assert len(uids) == len(DASHBOARDS)
    for panel in panels_of(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            field = "rawSql" if "postgres" in target["datasource"]["type"] else "expr"
            assert target[field].strip(), f"{panel['title']}: empty {field}"


def exported_metrics() -> set[str]:
    """Metric names docs/metrics.md lists (the services' contract), plus Prometheus' own."""
    text = (REPO_ROOT / "docs" / "metrics.md").read_text()
    return set(re.findall(r"`(pipeline_[a-z0-9_]+)`", text)) | {"up", "ALERTS"}


def named_metrics(expression: str) -> set[str]:
    """Series names in a PromQL expression, histogram and counter suffixes brought back to the
    name the docs list."""
    names = set(re.findall(r"\b(pipeline_[a-z0-9_]+|up|ALERTS)\b", expression))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def test_every_metric_a_panel_or_rule_names_is_exported() -> None:
    expressions = [
        target["expr"]
        for path in DASHBOARDS
        for panel in panels_of(load(path))
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    rules = yaml.safe_load((REPO_ROOT / "infra" / "prometheus" / "rules.yml").read_text())
    expressions += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    exported = exported_metrics()
    missing = {name for e in expressions for name in named_metrics(e)} - exported
    assert not missing, f"not in docs/metrics.md: {sorted(missing)}"
