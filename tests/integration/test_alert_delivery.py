"""Alert events on real Kafka + Postgres: ids visible in id order, a follower that never skips
or repeats, the outbox relay crashed between publish and mark, a flaky webhook, Alertmanager."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
import requests
from confluent_kafka import Consumer

from analytics.alerts.store import AlertRow, insert_alert_events
from infra.alertmanager import alertmanager_argv, ensure_alertmanager
from shared.errors import StackError
from shared.kafka import Topics
from shared.settings import KafkaSettings, PostgresSettings
from tests.conftest import REPO_ROOT
from tests.integration import stacks
from tests.integration.alert_machines import alert_row as row
from tests.integration.processes import ServiceProcess, free_port, wait_for

RELAY = "analytics.alert_relay"
FAST_RELAY = {
    "ALERT_RELAY_POLL_S": "0.2",
    "ALERT_RETRY_INITIAL_S": "0.1",
    "ALERT_RETRY_MAX_S": "0.5",
}


def insert(pg: PostgresSettings, rows: list[AlertRow]) -> list[int]:
    with psycopg.connect(pg.conninfo()) as conn, conn.transaction():
        return insert_alert_events(conn, rows)


def table(pg: PostgresSettings, columns: str = "id") -> list[tuple]:
    with psycopg.connect(pg.conninfo()) as conn:
        return conn.execute(f"SELECT {columns} FROM alert_events ORDER BY id").fetchall()  # noqa: S608


def count(pg: PostgresSettings, what: str) -> int:
    with psycopg.connect(pg.conninfo()) as conn:
        return conn.execute(f"SELECT {what} FROM alert_events").fetchone()[0]  # noqa: S608


class Follower:
    """`python -m analytics.watch_alerts --json` as a process; its stdout in a file."""

    def __init__(self, env: dict[str, str], tmp_path: Path, *args: str) -> None:
        self.out = tmp_path / f"watch-{uuid.uuid4().hex[:6]}.jsonl"
        self.err = self.out.with_suffix(".err")
        argv = [sys.executable, "-m", "analytics.watch_alerts", "--json", "--poll-s", "1", *args]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=err)

    def ids(self) -> list[int]:
        lines = self.out.read_text().splitlines()
        return [json.loads(line)["event_id"] for line in lines if line.endswith("}")]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(15) == 0, self.err.read_text()


def follower_reading(pg: PostgresSettings) -> bool:
    """A follower of this database has read its start and waits (its last query is a read)."""
    query = (
        "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        " AND query LIKE '%%e.id > %%'"
    )
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        return conn.execute(query, (pg.dbname,)).fetchone() is not None


def test_ids_visible_in_id_order_and_a_follower_sees_each_once(
    pg_settings: PostgresSettings, service_env: dict[str, str], tmp_path: Path
) -> None:
    first = insert(pg_settings, [row("AAPL-rsi", 0)])
    follower = Follower(service_env, tmp_path, "--from-id", "1")
    try:
        wait_for(lambda: follower.ids() == first, 30, "the first event")
        # Writer A takes the lock and holds its transaction open; writer B waits for the lock.
        a = psycopg.connect(pg_settings.conninfo())
        a_ids = insert_alert_events(a, [row("AAPL-rsi", 1, "resolved"), row("MSFT-rsi", 1)])
        with psycopg.connect(pg_settings.conninfo()) as impatient:
            impatient.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                insert_alert_events(impatient, [row("NVDA-rsi", 1)])
        b_ids: list[int] = []
        b = threading.Thread(target=lambda: b_ids.extend(insert(pg_settings, [row("SPY-rsi", 1)])))
        b.start()
        time.sleep(1.0)
        assert b.is_alive() and follower.ids() == first  # B waits; A's rows are not visible
        a.commit()
        a.close()
        b.join(15)
        assert b_ids and min(b_ids) > max(a_ids)  # the late writer's ids come after
        expected = [i for (i,) in table(pg_settings)]
        assert expected == first + a_ids + b_ids
        wait_for(lambda: follower.ids() == expected, 30, "every event")
        # Replaying the same rows inserts nothing; a replay that also holds a new one chains it.
        assert insert(pg_settings, [row("AAPL-rsi", 0), row("AAPL-rsi", 1, "resolved")]) == []
        again = insert(pg_settings, [row("AAPL-rsi", 1, "resolved"), row("AAPL-rsi", 2)])
        assert len(again) == 1
        wait_for(lambda: follower.ids() == expected + again, 30, "the event after the replay")
        time.sleep(1.5)  # more poll rounds: nothing repeats
        assert follower.ids() == expected + again
    finally:
        follower.stop()
    chains: dict[str, list[tuple[int, int | None]]] = {}
    for event_id, fingerprint, prev in table(pg_settings, "id, fingerprint, prev_event_id"):
        chains.setdefault(fingerprint, []).append((event_id, prev))
    for events in chains.values():
        assert [prev for _, prev in events] == [None] + [i for i, _ in events[:-1]]


def consumed_ids(kafka: KafkaSettings, topic: str, want: set[int]) -> dict[int, list[int]]:
    """Event ids on `topic` per partition in log order, read until every one of `want` came."""
    consumer = Consumer(
        {**kafka.client_config(), "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    seen: dict[int, list[int]] = {}
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.5):
                assert message.error() is None, message.error()
                document = json.loads(message.value())
                assert message.key() == document["symbol"].encode()
                seen.setdefault(message.partition(), []).append(document["event_id"])
            if want <= {i for ids in seen.values() for i in ids}:
                time.sleep(1.0)  # and whatever else is there
                for message in consumer.consume(1000, timeout=1.0):
                    seen.setdefault(message.partition(), []).append(
                        json.loads(message.value())["event_id"]
                    )
                return seen
    finally:
        consumer.close()
    raise AssertionError(f"not every event reached {topic}: {seen}")


def test_relay_killed_after_publish_publishes_again_and_marks_once(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    insert(pg_settings, [row(f"{s}-rsi", 0) for s in ("AAPL", "MSFT", "NVDA", "SPY", "QQQ")])
    killed = ServiceProcess(
        RELAY, service_env, tmp_path, failpoint="relay_after_publish", **FAST_RELAY
    ).start()
    assert killed.wait_exit(60) == -signal.SIGKILL, killed.log()
    assert count(pg_settings, "count(published_at)") == 0  # published, never marked
    insert(pg_settings, [row("AAPL-rsi", 1, "resolved"), row("KO-rsi", 1)])
    relay = ServiceProcess(RELAY, service_env, tmp_path, **FAST_RELAY).start()
    standby = ServiceProcess(RELAY, service_env, tmp_path, **FAST_RELAY)
    try:
        wait_for(lambda: "active" in relay.healthz()[1]["notes"], 30, "the relay to be active")
        standby.start()
        unpublished = "count(*) - count(published_at)"
        wait_for(lambda: count(pg_settings, unpublished) == 0, 60, "every event published")
        ids = [i for (i,) in table(pg_settings)]
        assert len(ids) == 7  # exactly one row per state change
        on_topic = consumed_ids(kafka_settings, topics.alerts_events, set(ids))
        assert {i for seen in on_topic.values() for i in seen} == set(ids)  # none foreign
        for seen in on_topic.values():  # per partition, first appearances in id order
            firsts = list(dict.fromkeys(seen))
            assert firsts == sorted(firsts)
        # The killed relay's five went out twice (confirmed, not marked), the rest once.
        copies = Counter(i for seen in on_topic.values() for i in seen)
        assert copies == {i: 2 if n < 5 else 1 for n, i in enumerate(ids)}
        status, body = standby.healthz()
        assert status == 200 and any("standby" in note for note in body["notes"]), body
    finally:
        assert standby.stop() == 0, standby.log()
        assert relay.stop() == 0, relay.log()


class FlakyWebhook(BaseHTTPRequestHandler):
    """Fails the first `failures` requests with 500, records (key, event_id, status)."""

    failures = 0
    seen: list[tuple[str, int, int]] = []

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        status = 500 if len(cls.seen) < cls.failures else 200
        cls.seen.append((self.headers["Idempotency-Key"], body["event_id"], status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[FlakyWebhook]]]:
    handler = type("Flaky", (FlakyWebhook,), {"failures": 3, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def test_webhook_failing_first_requests_gets_every_event(
    pg_settings: PostgresSettings,
    service_env: dict[str, str],
    tmp_path: Path,
    webhook: tuple[str, type[FlakyWebhook]],
) -> None:
    url, handler = webhook
    live = insert(
        pg_settings, [row("AAPL-rsi", 0), row("MSFT-rsi", 0), row("AAPL-rsi", 1, "resolved")]
    )
    old = insert(pg_settings, [row("NVDA-rsi", 0, historical=True)])
    relay = ServiceProcess(
        RELAY, service_env, tmp_path, ALERT_WEBHOOK_URL=url, **FAST_RELAY
    ).start()
    try:
        marked = "count(webhook_delivered_at)"
        wait_for(lambda: count(pg_settings, marked) == 4, 60, "every event delivered or skipped")
        wait_for(lambda: "webhook: backlog 0" in relay.healthz()[1]["notes"], 30, "backlog 0")
    finally:
        assert relay.stop() == 0, relay.log()
    assert all(key == str(event_id) for key, event_id, _ in handler.seen)
    assert [event_id for _, event_id, status in handler.seen if status == 200] == live
    assert len(handler.seen) == len(live) + handler.failures
    skipped = table(pg_settings, "id, webhook_skipped, alertmanager_skipped")
    assert skipped == [(i, None, "not configured") for i in live] + [
        (old[0], "historical", "historical")
    ]


def alerts_in(base: str) -> list[dict]:
    reply = requests.get(f"{base}/api/v2/alerts", timeout=5)
    reply.raise_for_status()
    return reply.json()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    try:
        binary = ensure_alertmanager()
    except StackError as exc:
        pytest.fail(f"Alertmanager is needed for this test: {exc}", pytrace=False)
    port = free_port()
    argv = alertmanager_argv(binary, tmp_path / "alertmanager", "127.0.0.1", port)
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base) or process.poll() is not None, 30, "Alertmanager")
        assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
        yield base
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def _ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/-/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_alertmanager_shows_firing_then_resolved(
    pg_settings: PostgresSettings, service_env: dict[str, str], tmp_path: Path, alertmanager: str
) -> None:
    insert(pg_settings, [row("AAPL-rsi", 0), row("MSFT-rsi", 0, historical=True)])
    relay = ServiceProcess(
        RELAY, service_env, tmp_path, ALERTMANAGER_URL=alertmanager, **FAST_RELAY
    ).start()
    try:
        wait_for(lambda: len(alerts_in(alertmanager)) == 1, 30, "the firing alert")
        (alert,) = alerts_in(alertmanager)
        assert alert["status"]["state"] == "active"
        assert alert["labels"] | {"fingerprint": ""} == {
            "alertname": "rule-AAPL-rsi", "symbol": "AAPL", "interval": "1d",
            "severity": "warning", "fingerprint": "",
        }  # fmt: skip
        assert alert["annotations"]["summary"] == "AAPL 1d RSI 71.5 > 70 (AAPL-rsi)"
        assert alert["startsAt"].startswith("2024-03-01T00:00:00")
        insert(pg_settings, [row("AAPL-rsi", 3, "resolved")])
        wait_for(lambda: alerts_in(alertmanager) == [], 30, "the alert resolved")
    finally:
        assert relay.stop() == 0, relay.log()
    markers = table(pg_settings, "alertmanager_delivered_at IS NOT NULL, alertmanager_skipped")
    assert markers == [(True, None), (True, "historical"), (True, None)]


@pytest.mark.serial  # stops the shared PostgreSQL: never beside other tests
def test_follower_resumes_after_a_postgres_restart(
    pg_settings: PostgresSettings,
    stack: stacks.TestStack,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    insert(pg_settings, [row("AAPL-rsi", 0)])  # before the follower: not printed ("from now")
    follower = Follower(service_env, tmp_path)
    relay = ServiceProcess(RELAY, service_env, tmp_path, **FAST_RELAY).start()
    try:
        wait_for(lambda: follower_reading(pg_settings), 30, "the follower's first read")
        before = insert(pg_settings, [row("MSFT-rsi", 0), row("NVDA-rsi", 0)])
        wait_for(lambda: follower.ids() == before, 30, "the events before the restart")
        # The relay past its start: one that first meets PostgreSQL stopping fails fast (exit 2,
        # one line) by design, and this test is about a relay that was running.
        wait_for(lambda: "active" in relay.healthz()[1]["notes"], 30, "the relay to be active")
        stack.stop_postgres()
        try:
            time.sleep(2)
        finally:
            stack.start_postgres()
        after = insert(pg_settings, [row("MSFT-rsi", 1, "resolved"), row("SPY-rsi", 1)])
        wait_for(lambda: follower.ids() == before + after, 60, "the events after the restart")
        time.sleep(1.5)
        assert follower.ids() == before + after  # no gap, no repeat
        # The relay went through the outage too: everything published, green again.
        unpublished = "count(*) - count(published_at)"
        wait_for(lambda: count(pg_settings, unpublished) == 0, 60, "every event published")
        wait_for(lambda: relay.healthz()[0] == 200, 30, "the relay's health to recover")
    finally:
        follower.stop()
        assert relay.stop() == 0, relay.log()
    assert "retrying" in follower.err.read_text()  # it did lose the connection


def test_a_historical_event_is_skipped_as_historical_even_by_the_not_configured_pass(
    pg_settings: PostgresSettings,
) -> None:
    """A historical event inserted after the relay's historical pass and before its
    not-configured pass (both run each round) is still marked `historical`: the reason a
    downstream reader sees must not depend on when the row arrived."""
    from analytics.alerts.store import skip_pending

    insert(pg_settings, [row("a", 1, historical=True), row("b", 1)])
    with psycopg.connect(pg_settings.conninfo()) as conn:
        assert skip_pending(conn, "webhook", "not configured", historical_only=False) == 2
    assert table(pg_settings, "historical, webhook_skipped") == [
        (True, "historical"),
        (False, "not configured"),
    ]
