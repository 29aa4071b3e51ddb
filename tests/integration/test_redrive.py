"""`python -m consumer.redrive`: chosen dead letters go back to their topic once, are stored by
the current consumer, and are marked; producer dead letters are never chosen."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import psycopg

from shared.kafka import Topics
from shared.schemas import encode
from shared.settings import Settings
from tests.conftest import REPO_ROOT
from tests.integration.bar_stream import minute_bars
from tests.integration.storage_thread import fast_consumer, storage_running, wait_stored

INSERT_LETTER = """
INSERT INTO dead_letters (service, topic, kafka_partition, kafka_offset, key, payload, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id
"""


def redrive(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer.redrive", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_redrive_publishes_chosen_letters_once_and_storage_stores_them(
    settings_factory: Callable[..., Settings], topics: Topics, service_env: dict[str, str]
) -> None:
    settings = settings_factory(consumer=fast_consumer())
    bar = minute_bars(["AAPL"], 1)[0]
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        # A valid bar an older consumer had rejected (a rule since relaxed), and an API payload
        # a producer dead-lettered: that one has no data topic to go back to.
        (letter,) = conn.execute(
            INSERT_LETTER,
            ("storage", topics.market_bars, 3, 41, b"AAPL", encode(bar), "unknown interval"),
        ).fetchone()
        conn.execute(
            INSERT_LETTER,
            ("market", topics.deadletter, 0, 7, None, b'{"chart": null}', "unparsable chart"),
        )

    listed = redrive(service_env, "--reason-contains", "unknown", "--service", "storage")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].startswith(
        f"{letter}\tstorage\t{topics.market_bars}[3]@41"
    )
    assert "--yes" in listed.stdout
    everything = redrive(service_env, "--since", "2000-01-01T00:00:00+00:00")
    assert len([line for line in everything.stdout.splitlines() if "\t" in line]) == 1

    with storage_running(settings):
        done = redrive(service_env, "--id", str(letter), "--yes")
        assert done.returncode == 0, done.stderr
        wait_stored(settings, topics.market_bars)
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        stored = conn.execute("SELECT symbol, ts, close FROM price_bars").fetchall()
        marked = conn.execute(
            "SELECT redriven_at IS NOT NULL, redriven_offset FROM dead_letters WHERE id = %s",
            (letter,),
        ).fetchone()
    assert stored == [("AAPL", bar.ts, bar.close)]
    assert marked is not None and marked[0] and marked[1] is not None

    again = redrive(service_env, "--id", str(letter), "--yes")
    assert again.returncode == 1 and "no dead letter matches" in again.stderr
    assert redrive(service_env, "--yes").returncode == 2  # nothing chosen: refused
