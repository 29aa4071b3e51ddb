"""A running pipeline's metrics, readiness, status screen and pipeline_metrics table.

One replayed pipeline under start_pipeline.py (real Kafka and PostgreSQL, recorded API
responses): every service's /metrics parses with prometheus-client's parser and shows the
figures that must have moved; /readyz is green once consumers own their partitions; the monitor
reports lag per partition (0 once storage drained) and writes pipeline_metrics; `start_pipeline.py
status` shows each service and, the recordings being from the past, stale bars in red.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
from confluent_kafka import Consumer, KafkaError
from prometheus_client.parser import text_string_to_metric_families

from shared.health import Health
from shared.kafka import Topics
from shared.loop.broker_watch import BrokerWatch
from shared.services import all_services, by_name
from shared.settings import ConsumerSettings, KafkaSettings, PostgresSettings
from tests.conftest import REPO_ROOT
from tests.integration.bar_stream import drained, minute_bars, publish, publish_bars
from tests.integration.processes import (
    answer,
    free_port_range,
    replay_pipeline_env,
    start_supervisor,
    storage_member,
    wait_for,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of `name`'s samples whose labels include `labels`."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


def _lag_of(screen: str, service: str) -> str:
    """The lag column of `service`'s row on the status screen (next to last)."""
    row = next((line for line in screen.splitlines() if line.startswith(service + " ")), "")
    return row.split()[-2] if row else ""


def test_a_running_pipeline_reports_what_moved(
    pg_settings: PostgresSettings, service_env: dict[str, str], tmp_path: Path
) -> None:
    base = free_port_range(span=80)
    env = replay_pipeline_env(
        service_env,
        base,
        MONITOR_INTERVAL_S="1",
        FORECAST_WORKERS="0",
        # Less work on a shared 2-core machine: two symbols, and no origin falls due (an origin
        # needs FORECAST_MIN_BARS bars; the recordings hold fewer): the forecaster still consumes.
        MARKET_SYMBOLS="AAPL,MSFT",
        FORECAST_MIN_BARS="1000",
        FORECAST_WINDOW="1000",
        LOCAL_STACK_DIR=str(tmp_path / "local"),
        DASHBOARD_PORT=str(base + 79),  # its web page: not one of the health ports
    )
    port = {one.name: base + one.port_offset for one in all_services()}
    log_path = tmp_path / "start_pipeline.log"
    supervisor = start_supervisor(env, log_path)

    def counted(sql: str) -> int:
        with psycopg.connect(pg_settings.conninfo()) as conn:
            return conn.execute(sql).fetchone()[0]

    def storage_drained() -> bool:
        samples = scrape(port["pipeline.monitor"])
        lag = {
            labels: value
            for (name, labels), value in samples.items()
            if name == "pipeline_consumer_lag_messages"
            and ("group", ConsumerSettings().group_storage) in labels
        }
        # ... in a round that also saw the indicators (their age is known once there are any).
        indicators_seen = total(samples, "pipeline_data_age_seconds", domain="indicators") > 0
        return len(lag) > 0 and sum(lag.values()) == 0 and indicators_seen

    try:
        wait_for(
            lambda: counted("SELECT count(*) FROM indicators") > 0,
            120,
            "indicators",
            detail=lambda: log_path.read_text(errors="replace")[-4000:],
        )
        try:
            wait_for(lambda: answer(port["consumer.storage"], "/readyz")[0] == 200, 30, "ready")
        except AssertionError:
            raise AssertionError(answer(port["consumer.storage"], "/readyz")) from None
        wait_for(storage_drained, 60, "the monitor to see storage's lag at 0 on every partition")
        wait_for(
            lambda: (
                counted(
                    "SELECT count(*) FROM pipeline_metrics"
                    " WHERE name = 'pipeline_consumer_lag_messages'"
                )
                > 0
            ),
            30,
            "lag rows in pipeline_metrics",
        )
        # Storage drains long before a busy machine has started the forecaster (its fit workers
        # warm up first): every service must answer before its figures are read.
        wait_for(
            lambda: all(answer(number, "/metrics")[0] == 200 for number in port.values()),
            60,
            "every service's /metrics",
            detail=lambda: log_path.read_text(errors="replace")[-4000:],
        )
        # Answering is not owning: a busy machine assigns the forecaster's group a moment after
        # its /metrics is up (the first run of this test's scrape saw 0 partitions there).
        wait_for(
            lambda: total(scrape(port["analytics.forecaster"]), "pipeline_partitions") == 12,
            60,
            "the forecaster to own every partition of market.bars",
            detail=lambda: log_path.read_text(errors="replace")[-4000:],
        )
        scraped = {name: scrape(number) for name, number in port.items()}
        screens: list[subprocess.CompletedProcess[str]] = []

        def status_shows_storage_drained() -> bool:
            # The screen reads offsets and watermarks when it runs: a producer's later poll (the
            # macro series, the news) may have landed since the monitor's round; storage drains it.
            screens.append(
                subprocess.run(
                    [sys.executable, "start_pipeline.py", "status", "--sample", "0.3"],
                    cwd=REPO_ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
            )
            return _lag_of(screens[-1].stdout, "consumer.storage") == "0"

        wait_for(
            status_shows_storage_drained,
            60,
            "the status screen to show storage's lag at 0",
            step=1.0,
            detail=lambda: screens[-1].stdout + screens[-1].stderr,
        )
        status = screens[-1]
    finally:
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(60)
    output = log_path.read_text()
    assert code == 0, output

    market = scraped["producer.market"]
    assert total(market, "pipeline_messages_total", direction="out") > 0
    assert total(market, "pipeline_api_requests_total", api="yahoo", status="200") > 0

    storage = scraped["consumer.storage"]
    assert total(storage, "pipeline_messages_total", direction="in") > 0
    assert total(storage, "pipeline_rows_written_total", table="price_bars") > 0
    assert total(storage, "pipeline_batch_messages_count") > 0
    assert total(storage, "pipeline_batch_messages_sum") >= total(
        storage, "pipeline_messages_total", direction="in"
    )
    assert total(storage, "pipeline_write_duration_seconds_count") > 0
    assert total(storage, "pipeline_commit_latency_seconds_count") > 0
    assert total(storage, "pipeline_partitions", state="consuming") > 0
    assert total(storage, "pipeline_partitions", state="awaiting_offsets") == 0
    assert total(storage, "pipeline_ready") == 1
    assert total(storage, "pipeline_upsert_conflicts_total") == 0

    analytics = scraped["analytics.consumer"]
    assert total(analytics, "pipeline_rows_written_total", table="indicators") > 0
    # In its group, owning every partition of market.bars (its own pace is not awaited).
    forecaster = scraped["analytics.forecaster"]
    assert total(forecaster, "pipeline_partitions") == 12
    # Every label of a per-message counter is bounded: no symbol anywhere.
    for samples in scraped.values():
        for _name, labels in samples:
            assert "symbol" not in dict(labels)

    monitor = scraped["pipeline.monitor"]
    bars_partitions = {
        dict(labels)["partition"]
        for name, labels in monitor
        if name == "pipeline_consumer_lag_messages"
        and dict(labels)["group"] == ConsumerSettings().group_storage
        and dict(labels)["topic"].endswith("market.bars")
    }
    assert bars_partitions == {str(n) for n in range(12)}
    assert total(monitor, "pipeline_data_stale", domain="bars") == 1  # recordings are history
    assert total(monitor, "pipeline_monitor_runs_total", outcome="ok") > 0
    assert total(monitor, "pipeline_service_up", service="consumer.storage") == 1
    # Partition upkeep (db/partitions.py) ran as the owner role from the monitor's rounds.
    assert total(monitor, "pipeline_partition_upkeep_total", outcome="ok") > 0
    assert total(monitor, "pipeline_partition_upkeep_total", outcome="failed") == 0
    with psycopg.connect(pg_settings.conninfo()) as conn:
        stale = conn.execute(
            "SELECT value FROM latest_pipeline_metrics "
            "WHERE name = 'pipeline_data_stale' AND labels->>'domain' = 'bars'"
        ).fetchone()
    assert stale == (1.0,)

    # The status screen: every service up with its restarts, stale bars make it red (exit 1).
    assert status.returncode == 1, status.stdout + status.stderr
    screen = status.stdout
    for one in all_services():
        row = next(line for line in screen.splitlines() if line.startswith(one.name + " "))
        assert row.split()[1] == "up" and row.split()[-1] == "0", row
    bars = next(line for line in screen.splitlines() if line.startswith("bars "))
    assert "stale" in bars

    # In a file the status line is written on change (or once a minute), never the same twice.
    lines = [line for line in output.splitlines() if "status |" in line]
    assert lines, output
    assert all(a != b for a, b in zip(lines, lines[1:], strict=False)), lines
    assert json.loads((tmp_path / "local" / f"supervisor-{base}.json").read_text())["services"]
    assert by_name("pipeline.monitor").name in output
    assert not re.search(r"Traceback", output), output


def test_a_consumer_red_for_kafka_turns_green_when_the_broker_answers(
    kafka_settings: KafkaSettings,
) -> None:
    health = Health("test.service")
    watch = BrokerWatch(health)
    consumer = Consumer({**kafka_settings.client_config(), "group.id": "broker-watch"})
    try:
        watch.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))  # as librdkafka reports it
        assert health.snapshot()[0] is False
        watch._next_check = 0.0  # noqa: SLF001 (no waiting for the recheck period here)
        watch.check(consumer)  # the real broker answers its metadata request
        assert health.snapshot() == (True, []) and not watch.down
    finally:
        consumer.close()


def test_rejections_are_counted_by_topic_and_reason_class(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    """Undecodable bytes count as `schema`, a bar PostgreSQL refuses as `database`; the good
    ones are written in batches the histograms saw."""
    with psycopg.connect(pg_settings.conninfo()) as conn:
        conn.execute("ALTER TABLE price_bars ADD CONSTRAINT no_poison CHECK (symbol <> 'POISON')")
    bars = minute_bars(["AAPL", "MSFT"], 10)
    publish_bars(kafka_settings, topics.market_bars, bars)
    publish(kafka_settings, topics.market_bars, [(b"AAPL", b"not json at all")])
    publish_bars(kafka_settings, topics.market_bars, minute_bars(["POISON"], 1))
    consumer = storage_member(service_env, tmp_path, group).start()
    try:
        wait_for(lambda: drained(pg_settings, kafka_settings, group, topics.market_bars), 60, "")
        samples = scrape(consumer.port)
    finally:
        assert consumer.stop() == 0, consumer.log()
    rejected = "pipeline_messages_rejected_total"
    assert total(samples, rejected, topic=topics.market_bars, reason="schema") == 1
    assert total(samples, rejected, topic=topics.market_bars, reason="database") == 1
    assert total(samples, rejected) == 2
    assert total(samples, "pipeline_messages_total", direction="in") == len(bars) + 2
    assert total(samples, "pipeline_batch_messages_sum") >= len(bars) + 2
    assert total(samples, "pipeline_write_duration_seconds_count") >= 1
