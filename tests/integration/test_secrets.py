"""No secret in any log line, stderr, /healthz or /metrics of a whole running pipeline: API keys,
the database passwords the services log in with, and a webhook URL that carries its token in its
path (as Slack's and many others' do). Recognisable fake values: any trace of one is a leak."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from analytics.alerts.store import AlertRow, insert_alert_events
from shared.services import all_services
from shared.settings import PostgresSettings
from tests.conftest import REPO_ROOT
from tests.integration.processes import (
    answer,
    free_port,
    free_port_range,
    replay_pipeline_env,
    start_supervisor,
    wait_for,
)

TOKEN = uuid.uuid4().hex[:12]
SECRETS = {
    "FINNHUB_API_KEY": f"FAKEFINNHUB{TOKEN}",
    "FRED_API_KEY": f"fakefred{TOKEN}0123456789ab",
    "POSTGRES_WRITER_PASSWORD": f"writer-pw-{TOKEN}",
    "POSTGRES_READER_PASSWORD": f"reader-pw-{TOKEN}",
}
WEBHOOK_PATH_SECRET = f"T0{TOKEN}/B0/hookSecret{TOKEN}"


@pytest.fixture
def own_roles(pg_settings: PostgresSettings) -> Iterator[dict[str, str]]:
    """Writer and reader roles of this test's own (roles are cluster-wide: the shared ones keep
    their passwords for every other test), dropped afterwards."""
    roles = {"POSTGRES_WRITER_USER": f"w_{TOKEN}", "POSTGRES_READER_USER": f"r_{TOKEN}"}
    yield roles
    with psycopg.connect(pg_settings.conninfo(), autocommit=True) as conn:
        for role in roles.values():
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            if exists.fetchone():
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def live_alert() -> AlertRow:
    return AlertRow(
        f"{uuid.uuid4().int:032x}"[:32], "rsi_overbought", "test", "warning", "AAPL", "1d",
        "firing", 75.0, 70.0, "RSI 75 > 70", datetime.now(UTC), False,
    )  # fmt: skip


def assert_no_secret(text: str, where: str) -> None:
    for name, value in [*SECRETS.items(), ("ALERT_WEBHOOK_URL", WEBHOOK_PATH_SECRET)]:
        assert value not in text, f"{name} leaked into {where}"


def test_a_running_pipeline_never_shows_a_secret(
    pg_settings: PostgresSettings,
    service_env: dict[str, str],
    own_roles: dict[str, str],
    tmp_path: Path,
) -> None:
    base = free_port_range(span=99)
    env = replay_pipeline_env(
        service_env,
        base,
        **SECRETS,
        **own_roles,
        DASHBOARD_PORT=str(free_port()),
        # Nothing listens there: every delivery fails and is retried, with its error logged.
        ALERT_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/services/{WEBHOOK_PATH_SECRET}",
        ALERT_RETRY_INITIAL_S="0.2",
        LOG_LEVEL="DEBUG",
    )
    log_path = tmp_path / "start_pipeline.log"
    supervisor = start_supervisor(env, log_path)
    pages: dict[str, str] = {}
    try:
        with psycopg.connect(pg_settings.conninfo()) as conn:

            def stored(table: str) -> bool:
                query = sql.SQL("SELECT count(*) > 0 FROM {}").format(sql.Identifier(table))
                return bool(conn.execute(query).fetchone()[0])  # type: ignore[index]

            wait_for(
                lambda: all(map(stored, ("price_bars", "indicators", "macro_observations"))),
                120,
                "rows from the market, news and macro producers",
                detail=lambda: log_path.read_text()[-3000:],
            )
        # A live (not historical) alert: the relay posts it to the webhook, which fails, and
        # says so in the log and /healthz.
        with psycopg.connect(pg_settings.conninfo()) as conn, conn.transaction():
            insert_alert_events(conn, [live_alert()])
        wait_for(
            lambda: "not delivered" in log_path.read_text(),
            60,
            "the webhook's failed delivery in the log",
            detail=lambda: log_path.read_text()[-3000:],
        )
        for service in all_services():
            for path in ("healthz", "readyz", "metrics"):
                _status, page = answer(base + service.port_offset, f"/{path}")
                pages[f"{service.name} /{path}"] = page
    finally:
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(60)
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert_no_secret(output, "the log")
    assert sum(bool(page) for page in pages.values()) >= len(all_services())
    for where, page in pages.items():
        assert_no_secret(page, where)
    # The rows above were written by services logged in with the secret password, as the
    # writer role start_pipeline's bootstrap made for this test.
    with psycopg.connect(pg_settings.conninfo()) as conn:
        role = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = %s", (own_roles["POSTGRES_WRITER_USER"],)
        ).fetchone()
    assert role is not None


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("ALERT_WEBHOOK_URL", f"ftp://hooks.example/{WEBHOOK_PATH_SECRET}"),
        ("FRED_REQUESTS_PER_MINUTE", "many"),
    ],
    ids=["a-secret-url", "a-plain-number"],  # the values hold this process's random token
)
def test_a_start_with_an_invalid_setting_says_one_line_without_a_secret(
    setting: str, value: str, service_env: dict[str, str]
) -> None:
    env = {**service_env, **SECRETS, setting: value}
    result = subprocess.run(
        [sys.executable, "-m", "analytics.alert_relay"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and setting in lines[0], result.stderr
    assert_no_secret(result.stdout + result.stderr, "the error")
