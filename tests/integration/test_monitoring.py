"""Prometheus and Grafana for real, on a pipeline replaying recorded Yahoo responses.

producer.market, two consumer.storage replicas, analytics.consumer and pipeline.monitor run as
processes against the test stack. A real Prometheus (Debian's package) scrapes them with the
configuration `make monitor` generates and the shipped rules: every target is up, the panels'
PromQL is valid, the years-old replayed bars fire PipelineDataStale (no lag, no lag alert), and
stopping a replica fires PipelineServiceDown. Every SQL panel of the Grafana dashboard, its
macros expanded, returns rows from the database the pipeline filled. promtool checks the
shipped rules (and their unit tests) and both generated configurations.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from infra.prometheus import COMPOSE_CONFIG, RULES, ensure_promtool, local_config_text
from infra.prometheus_config import local_config, local_targets, render
from shared.errors import StackError
from shared.health import health_port
from shared.services import by_name
from shared.settings import HealthSettings, PostgresSettings, PrometheusSettings
from tests.conftest import REPO_ROOT
from tests.integration import stacks
from tests.integration.grafana_sql import expand
from tests.integration.monitored_pipeline import Pipeline, replayed_pipeline
from tests.integration.processes import wait_for
from tests.integration.prometheus_server import (
    api,
    firing,
    query,
    rules_firing_at_once,
    running_prometheus,
)

RULES_TEST = RULES.parent / "rules_test.yml"
DASHBOARD = REPO_ROOT / "infra" / "grafana" / "dashboards" / "pipeline.json"
STORAGE_REPLICAS = 2
# Short enough that a stopped replica shows within a second or two.
SCRAPE_INTERVAL_S = 0.5


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    try:
        binary = ensure_promtool()
    except StackError as exc:
        pytest.fail(f"promtool is needed for this test: {exc}", pytrace=False)
    return subprocess.run(
        [str(binary), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_shipped_rules_pass_promtool_and_their_unit_tests() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
    # Each alert fires on its series after its `for:`, and not on a neighbour below threshold.
    tested = promtool("test", "rules", RULES_TEST)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_generated_configurations_pass_promtool(tmp_path: Path) -> None:
    local = tmp_path / "prometheus.yml"
    local.write_text(local_config_text(HealthSettings(), PrometheusSettings()))
    checked = promtool("check", "config", local)  # with its rule file
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The compose one names the rules at their path in the container: syntax only.
    compose = promtool("check", "config", "--syntax-only", COMPOSE_CONFIG)
    assert compose.returncode == 0, compose.stdout + compose.stderr


# --- A replayed pipeline, shared by the tests below ------------------------------------------


@pytest.fixture(scope="module")
def module_db(template_db: str) -> Iterator[PostgresSettings]:
    """A fresh migrated database for this module's pipeline."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = PostgresSettings().conninfo(dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    yield PostgresSettings(dbname=name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def pipeline(
    stack: stacks.TestStack,
    module_db: PostgresSettings,
    recordings: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pipeline]:
    """One pipeline for the module: starting it is most of these tests' time."""
    log_dir = tmp_path_factory.mktemp("services")
    with replayed_pipeline(module_db, recordings, log_dir, STORAGE_REPLICAS) as running:
        yield running


@pytest.fixture
def prometheus(pipeline: Pipeline, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the pipeline with the config `make monitor` would write for
    these services and replicas, and the shipped rules (firing without their `for:` wait)."""
    rules = rules_firing_at_once(RULES, tmp_path / "rules.yml")
    services = sorted({by_name(name) for name, _ in pipeline.processes}, key=lambda s: s.name)
    targets = local_targets(
        services, "127.0.0.1", pipeline.base_port, {"consumer.storage": STORAGE_REPLICAS}
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(render(local_config(targets, [str(rules)], SCRAPE_INTERVAL_S)))
    with running_prometheus(config, tmp_path) as base:
        yield base


def test_prometheus_scrapes_every_replica_and_a_stopped_one_fires_service_down(
    pipeline: Pipeline, prometheus: str
) -> None:
    expected = {(name, str(index)) for name, index in pipeline.processes}

    def scraped_up() -> set[tuple[str, str]]:
        targets = api(prometheus, "targets", state="active")["activeTargets"]
        return {
            (t["labels"]["job"], t["labels"]["replica"]) for t in targets if t["health"] == "up"
        }

    wait_for(lambda: scraped_up() == expected, 30, f"every target up: {sorted(expected)}")

    # The scrapes carry what the services did: both consumers consumed the replayed bars.
    def moved(direction: str) -> set[str]:
        expr = f'sum by (job) (pipeline_messages_total{{direction="{direction}"}}) > 0'
        return {sample["metric"]["job"] for sample in query(prometheus, expr)}

    consumers = {"consumer.storage", "analytics.consumer"}
    wait_for(lambda: moved("in") == consumers, 15, "consumed messages in the scraped samples")
    assert moved("out") == {"producer.market"}
    written = query(prometheus, 'sum(pipeline_rows_written_total{table="price_bars"})')
    assert float(written[0]["value"][1]) > 0
    # Every Prometheus panel of the dashboard is a query Prometheus accepts.
    for panel_expr in dashboard_expressions():
        api(prometheus, "query", query=panel_expr)
    assert firing(prometheus, "PipelineServiceDown") == []
    # The monitor reads the stored data: the replayed bars are years old, past their SLA.
    wait_for(lambda: firing(prometheus, "PipelineDataStale"), 30, "PipelineDataStale")
    stale = {alert["domain"] for alert in firing(prometheus, "PipelineDataStale")}
    assert {"bars", "indicators"} <= stale
    # ... and the lag it reads from the broker and consumer_offsets is none: no lag alert.
    lag = "max(pipeline_consumer_lag_messages)"
    wait_for(lambda: query(prometheus, lag)[0]["value"][1] == "0", 15, "no consumer lag")
    assert firing(prometheus, "PipelineConsumerLagging") == []

    assert pipeline.processes[("consumer.storage", 1)].stop() == 0
    wait_for(lambda: firing(prometheus, "PipelineServiceDown"), 30, "PipelineServiceDown")
    (alert,) = firing(prometheus, "PipelineServiceDown")
    assert (alert["job"], alert["replica"], alert["severity"]) == ("consumer.storage", "1", "page")
    port = health_port(HealthSettings(base_port=pipeline.base_port, replica_index=1), alert["job"])
    assert alert["instance"] == f"127.0.0.1:{port}"


def dashboard_panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def dashboard_expressions() -> list[str]:
    """The dashboard's PromQL with Grafana's own variables as Grafana fills them."""
    return [
        target["expr"].replace("$__rate_interval", "2s").replace("$__interval", "1s")
        for panel in dashboard_panels()
        for target in panel["targets"]
        if "expr" in target
    ]


# --- Grafana's SQL panels --------------------------------------------------------------------


def test_every_sql_panel_returns_rows_on_replayed_data(pipeline: Pipeline) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    with psycopg.connect(pipeline.pg.conninfo(), autocommit=True) as conn:
        # The range a user picks to see the replayed history (the default, now-1y, is live).
        start, end = conn.execute("SELECT min(ts), max(ts) FROM price_bars").fetchone()
        start, end = start - timedelta(days=1), end + timedelta(days=1)
        variables = choose_variables(conn, dashboard["templating"]["list"], start, end)
        assert variables["symbol"] == "AAPL" and variables["interval"] == "1d"
        sql_targets = [
            (panel["title"], target)
            for panel in dashboard_panels()
            for target in panel["targets"]
            if "rawSql" in target
        ]
        assert len(sql_targets) >= 5
        for title, target in sql_targets:
            text = expand(target["rawSql"], start, end, variables)
            cursor = conn.execute(text)  # noqa: S608 (the dashboard's own query)
            rows = cursor.fetchall()
            assert rows, f"{title}: no rows for {variables} between {start} and {end}"
            columns = [column.name for column in cursor.description]
            if target["format"] == "time_series":
                assert columns[0] == "time", f"{title}: a time series starts with `time`"
                assert all(isinstance(row[0], datetime) for row in rows)
                # Some value column has values (not only warm-up NULLs).
                assert any(v is not None for row in rows for v in row[1:]), title


def choose_variables(
    conn: psycopg.Connection, definitions: list[dict[str, Any]], start: datetime, end: datetime
) -> dict[str, str]:
    """Each template variable as Grafana sets it on load: its query's first value, queries
    expanded with the variables before it."""
    chosen: dict[str, str] = {}
    for variable in definitions:
        values = conn.execute(expand(variable["query"], start, end, chosen)).fetchall()
        assert values, f"variable {variable['name']} has no values"
        chosen[variable["name"]] = str(values[0][0])
    return chosen
