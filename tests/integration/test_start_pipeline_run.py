"""start_pipeline.py on the real stack in replay mode: every table fills, SIGTERM stops all."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import psycopg

from shared.services import all_services
from shared.settings import PostgresSettings
from tests.integration.processes import (
    free_port,
    free_port_range,
    replay_pipeline_env,
    start_supervisor,
    wait_for,
)

# Every table a replayed pipeline fills from the recorded responses.
COUNT_ROWS = {
    "price_bars": "SELECT count(*) FROM price_bars",
    "news_articles": "SELECT count(*) FROM news_articles",
    "macro_observations": "SELECT count(*) FROM macro_observations",
    "instruments": "SELECT count(*) FROM instruments",
    "corporate_actions": "SELECT count(*) FROM corporate_actions",
    "indicators": "SELECT count(*) FROM indicators",
}


def test_start_pipeline_replays_bars_into_postgres_and_stops_cleanly(
    pg_settings: PostgresSettings,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    # No REPLAY_DIR: `DATA_SOURCE=replay make run` replays the bundled recordings (the README demo).
    # Every service's health port is base + its offset (analytics.dashboard's is 70), and the
    # dashboard's page needs a port of its own too.
    env = replay_pipeline_env(
        service_env, free_port_range(span=99), DASHBOARD_PORT=str(free_port())
    )
    log_path = tmp_path / "start_pipeline.log"
    supervisor = start_supervisor(env, log_path)

    def empty_tables() -> list[str]:
        with psycopg.connect(pg_settings.conninfo()) as conn:
            return [
                table for table in COUNT_ROWS if conn.execute(COUNT_ROWS[table]).fetchone() == (0,)
            ]

    try:
        wait_for(lambda: not empty_tables(), 120, "rows in every table within two minutes")
        wait_for(lambda: "status |" in log_path.read_text(), 30, "a status line")
    finally:
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(60)
    output = log_path.read_text()
    assert code == 0, output
    for service in all_services():
        assert service.name in output
    # Every line says whose it is: ours, a setup step's summary, or a service's (its log lines
    # carry the name after the level; anything else it prints is labelled by start_pipeline).
    names = "|".join(re.escape(name) for name in ["start_pipeline", "db", "topic_setup"])
    services = "|".join(re.escape(service.name) for service in all_services())
    named = re.compile(rf"^(({names}|{services}): |\S+ \S+ [A-Z]+ ({services}) )")
    unnamed = [line for line in output.splitlines() if line and not named.match(line)]
    assert unnamed == [], output
