"""start_pipeline.py without services: backoff, restarts, stopping, setup steps, the status line."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from pipeline_supervisor import cli
from pipeline_supervisor.status import (
    ServiceView,
    Totals,
    format_status,
    message_rate,
    parse_totals,
    scrape,
    scrape_host,
)
from pipeline_supervisor.supervisor import (
    Child,
    backoff_delay,
    check,
    children_for,
    next_restart,
    run_step,
    stop_all,
    supervise,
)
from shared.health import Health, HealthServer, health_port
from shared.services import CONSUMER_STORAGE, all_services
from shared.settings import HealthSettings


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_backoff_doubles_from_one_second_to_a_minute() -> None:
    assert [backoff_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(10_000) == 60  # a long crash loop never overflows


def test_a_steady_run_resets_the_backoff() -> None:
    assert next_restart(0, ran_s=0.5) == (1, 1)
    assert next_restart(3, ran_s=59.0) == (4, 8)
    assert next_restart(6, ran_s=60.0) == (1, 1)


def test_starts_exactly_the_registered_services() -> None:
    health = HealthSettings()
    children = children_for(cli.parse_args([]).services, health)
    registered = all_services()
    assert [child.name for child in children] == [service.name for service in registered]
    assert [child.argv for child in children] == [
        [sys.executable, "-m", service.module] for service in registered
    ]
    assert [child.port for child in children] == [
        health_port(health, service.name) for service in registered
    ]


def exposition() -> str:
    """What a service's /metrics says, from counters named as in shared/metrics.py."""
    registry = CollectorRegistry()
    messages = Counter("pipeline_messages", "", ["topic", "direction"], registry=registry)
    rows = Counter("pipeline_rows_written", "", ["table"], registry=registry)
    other = Counter("pipeline_dead_letters", "", ["topic"], registry=registry)
    messages.labels("market.bars", "consumed").inc(30)
    messages.labels("pipeline.deadletter", "consumed").inc(2)
    rows.labels("price_bars").inc(25)
    rows.labels("dead_letters").inc(3)
    other.labels("market.bars").inc(99)
    return generate_latest(registry).decode()


def test_totals_sum_the_counters_over_their_labels() -> None:
    assert parse_totals(exposition(), at=7.0) == Totals(at=7.0, messages=32, rows=28)


def test_garbled_metrics_raise_value_error() -> None:
    with pytest.raises(ValueError):
        parse_totals("pipeline_messages_total{ not a sample", at=0.0)


def test_message_rate() -> None:
    first, later = Totals(10.0, 100, 0), Totals(12.0, 150, 0)
    assert message_rate(None, first) is None
    assert message_rate(first, None) is None
    assert message_rate(first, later) == 25.0
    assert message_rate(later, Totals(14.0, 20, 0)) == 10.0  # restarted: counted from 0


def test_status_line() -> None:
    line = format_status(
        [
            ServiceView("producer.market", "up", 12.345, 0),
            ServiceView("consumer.storage", "restarting(2)", None, None),
            ServiceView("x", "up", 0.0, 1234.0, ("Postgres down", "upgrade needed " * 9)),
        ]
    )
    assert line.startswith(
        "status | producer.market up 12.3 msg/s 0 rows"
        " | consumer.storage restarting(2) - msg/s - rows"
        " | x up 0.0 msg/s 1234 rows red: Postgres down; upgrade needed"
    )
    assert "\n" not in line and line.endswith("…") and len(line.split(" red: ")[1]) == 60


def test_scrape_reads_a_red_service() -> None:
    health = Health("test.service")
    health.red("db", "PostgreSQL unreachable")
    server = HealthServer(health, "127.0.0.1", 0)
    try:
        totals, reasons, notes = scrape(f"http://127.0.0.1:{server.port}")
    finally:
        server.close()
        health.green("db")
    assert totals is not None
    assert reasons == ("PostgreSQL unreachable",) and notes == ()


def test_a_disabled_source_is_green_with_its_note_on_the_status_line() -> None:
    health = Health("test.service")
    health.note("api:Finnhub", "disabled: no FINNHUB_API_KEY")
    server = HealthServer(health, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as reply:  # noqa: S310
            status, body = reply.status, json.loads(reply.read())
        _, reasons, notes = scrape(url)
    finally:
        server.close()
    assert status == 200
    assert body["status"] == "ok" and body["notes"] == ["disabled: no FINNHUB_API_KEY"]
    assert reasons == () and notes == ("disabled: no FINNHUB_API_KEY",)
    line = format_status([ServiceView("producer.news", "up", 0.0, 0, reasons, notes)])
    assert line == "status | producer.news up 0.0 msg/s 0 rows disabled: no FINNHUB_API_KEY"
    health.clear_note("api:Finnhub")
    assert health.notes() == []


def test_a_failed_scrape_is_empty_not_an_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert scrape(f"http://127.0.0.1:{port}") == (None, (), ())


def test_scrape_host() -> None:
    assert scrape_host("0.0.0.0") == "127.0.0.1"  # noqa: S104
    assert scrape_host("10.1.2.3") == "10.1.2.3"
    assert scrape_host("::") == "[::1]"


def test_a_crashed_child_restarts_after_its_backoff() -> None:
    child = Child("svc", python("raise SystemExit(1)"))
    child.start(now=100.0)
    assert child.process is not None
    child.process.wait(10)
    assert check(child, now=100.5) is None
    assert child.state == "restarting(1)" and child.restart_at == 101.5
    check(child, now=101.0)
    assert child.process is None  # not yet
    check(child, now=101.5)
    assert child.state == "up"
    child.process.wait(10)
    check(child, now=102.0)
    assert child.state == "restarting(2)" and child.restart_at == 104.0


def test_a_settings_exit_stops_everything() -> None:
    children = [
        Child("wrong", python("raise SystemExit(2)")),
        Child("fine", python("import time; time.sleep(30)")),
    ]
    started = time.monotonic()
    try:
        assert supervise(children, threading.Event(), status_every=60) == 2
    finally:
        stop_all(children, grace_s=5)
    assert time.monotonic() - started < 10
    assert [child.state for child in children] == ["stopped", "stopped"]


def test_stop_terminates_then_kills(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = python(
        "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(30)"
    )
    children = [Child("polite", python("import time; time.sleep(30)")), Child("stubborn", stubborn)]
    for child in children:
        child.start(now=0.0)
    deadline = time.monotonic() + 10
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    processes = [child.process for child in children]
    assert stop_all(children, grace_s=0.5) == ["stubborn"]
    assert [process.returncode for process in processes if process] == [-15, -9]


def test_a_failed_setup_step_prints_its_line_and_returns_its_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    step = python(
        "import sys; print('INFO some log line', file=sys.stderr);"
        "print('db: cannot reach postgresql://pipeline@nowhere:5432/pipeline', file=sys.stderr);"
        "raise SystemExit(2)"
    )
    assert run_step(step, threading.Event()) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "db: cannot reach postgresql://pipeline@nowhere:5432/pipeline"
    assert len(lines) == 2 and lines[1].endswith("failed (exit 2); no service started")


def test_a_setup_step_that_succeeds_prints_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_step(python("print('db: 0 migration(s) applied')"), threading.Event()) == 0
    assert capsys.readouterr().out == "db: 0 migration(s) applied\n"


def test_services_flag_limits_and_validates() -> None:
    assert cli.parse_args([]).services == all_services()
    assert cli.parse_args(["--services", "consumer.storage"]).services == (CONSUMER_STORAGE,)
    with pytest.raises(SystemExit) as caught:
        cli.parse_args(["--services", "consumer.storag"])
    assert caught.value.code == 2


def test_every_line_of_a_child_names_its_service(capsys: pytest.CaptureFixture[str]) -> None:
    code = (
        "import logging, sys;"
        "logging.basicConfig(format='%(asctime)s %(levelname)s svc %(name)s: %(message)s');"
        "logging.getLogger('svc.part').warning('logged');"
        "print('svc: invalid setting X: one line', file=sys.stderr, flush=True);"
        "print('printed');"
        "raise RuntimeError('boom')"
    )
    child = Child("svc", python(code))
    child.start(now=0.0)
    assert child.process is not None
    child.process.wait(10)
    for thread in child.output:
        thread.join(5)
    captured = capsys.readouterr()
    assert captured.out == "svc: printed\n"
    logged, settings_line, *traceback = captured.err.splitlines()
    assert logged.endswith(" WARNING svc svc.part: logged") and not logged.startswith("svc: ")
    assert settings_line == "svc: invalid setting X: one line"  # already named: left as is
    assert traceback[0] == "svc: Traceback (most recent call last):"
    assert traceback[-1] == "svc: RuntimeError: boom"
    assert all(line.startswith("svc: ") for line in traceback)


def test_a_failed_setup_steps_traceback_is_labelled(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_step(python("raise RuntimeError('boom')"), threading.Event()) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "setup step: Traceback (most recent call last):"
    assert "setup step: RuntimeError: boom" in lines
