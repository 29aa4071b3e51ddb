"""Issue 10 on the real broker and database: producer.market's own state (defects 3 and 4),
history before the calendar's default years (defect 7), and the backfill command."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import exchange_calendars
import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from analytics.consumer.service import configured_params
from analytics.indicators import annualization_factor
from analytics.series import SeriesState
from producer.market.backfill import backfill_once, recompute
from producer.market.service import market_loop, poll_once
from shared.db import make_pool
from shared.health import Health
from shared.kafka import Topics, ensure_topics, producer_config
from shared.schemas import CorporateAction, decode
from shared.settings import DataSource, KafkaSettings, MarketSettings, Settings, SourceSettings
from tests.integration.analytics_run import (
    VALUE_COLUMNS,
    Rows,
    analytics_running,
    assert_rows_equal,
    stored_indicators,
    wait_analyzed,
)
from tests.integration.bar_stream import end_offsets
from tests.integration.split_stream import SPLIT_FILES, chart, recorded_closes, session_key
from tests.integration.storage_thread import fast_consumer, storage_running, wait_stored

NVDA_FILE = SPLIT_FILES["NVDA"]  # 2021-02-01..2022-01-28, events: the 2021-07-20 4:1 split
TSLA_FILE = "chart_TSLA_1d_2010-06-29_2023-08-11.json"
# 28 years: the weekdays repeat (1461 whole weeks), so every recorded session stays a weekday.
SHIFT = timedelta(days=10227)


def replay_settings(
    factory: Callable[..., Settings], folder: Path, symbol: str, **groups: Any
) -> Settings:
    return factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=folder),
        market=MarketSettings(symbols=[symbol], interval="1d", requests_per_minute=6000),
        **groups,
    )


def full_history_indicators(settings: Settings, closes: dict[datetime, float]) -> Rows:
    """What one run over the whole recorded history computes: every close fed in order."""
    params = configured_params(settings.analytics)
    state = SeriesState.new(params, annualization_factor("1d", settings.analytics.exchange))
    rows: Rows = {}
    for ts in sorted(closes):
        values = state.feed(ts, closes[ts], 4.0)
        rows[("NVDA", "1d", ts)] = tuple(getattr(values, c) for c in VALUE_COLUMNS)
    return rows


def test_backfill_past_an_old_split_rebases_nothing_and_equals_a_full_history_run(
    settings_factory: Callable[..., Settings],
    topics: Topics,
    recordings: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defect 3 and the backfill: 30 days of NVDA first (Yahoo's chart for them lists no
    split), then a backfill reaching before the 2021-07-20 4:1 split. The basis comes from
    Yahoo's whole-life split list, so no bar changes basis: zero revisions, the adjusted view is
    the recorded closes, and the recomputed indicators equal a single full-history run."""
    folder = tmp_path / "recorded"
    folder.mkdir()
    shutil.copy(recordings / "yahoo" / NVDA_FILE, folder / NVDA_FILE)
    settings = replay_settings(settings_factory, folder, "NVDA", consumer=fast_consumer())
    result = chart(recordings / "yahoo", NVDA_FILE)
    closes = recorded_closes(result)
    last = datetime.fromtimestamp(result["timestamp"][-1], UTC)
    recent = {
        session_key(t) for t in result["timestamp"] if t >= (last - timedelta(days=30)).timestamp()
    }
    # The recompute runs as its own process, on this test's database.
    monkeypatch.setenv("POSTGRES_DBNAME", settings.postgres.dbname)

    with storage_running(settings), analytics_running(settings):
        first = backfill_once(settings, 30, threading.Event())
        assert first.published == len(recent) and not first.failed
        assert first.actions == 1  # the split, from the whole-life events request
        wait_stored(settings, topics.market_bars, topics.market_actions)
        wait_analyzed(settings)

        extended = backfill_once(settings, 400, threading.Event())
        assert extended.published == len(closes) - len(recent) and not extended.failed
        assert extended.actions == 0  # delivered before: never sent twice
        assert extended.backfilled == {"NVDA|1d": max(closes.keys() - recent)}
        wait_stored(settings, topics.market_bars)
        wait_analyzed(settings)
        assert recompute(extended, wait_s=60) == []

        with psycopg.connect(settings.postgres.conninfo()) as conn:
            revisions = conn.execute("SELECT count(*) FROM bar_revisions").fetchone()
            bases = conn.execute("SELECT DISTINCT split_basis FROM price_bars").fetchall()
            adjusted = dict(
                conn.execute("SELECT ts, close FROM price_bars_adjusted ORDER BY ts").fetchall()
            )
            late = conn.execute("SELECT count(*) FROM late_bars").fetchone()
        assert revisions == (0,)
        assert bases == [(4.0,)]
        assert adjusted == closes  # on the newest basis: the recorded (adjusted) closes
        assert late == (len(closes) - len(recent),)  # older than the newest: never fed live
        assert_rows_equal(stored_indicators(settings), full_history_indicators(settings, closes))

        # A poll afterwards resumes from the watermark: nothing older or newer to send.
        again = poll_once(settings)
        assert again.published == 0 and again.actions == 0 and not again.failed


def create_topics_without(settings: KafkaSettings, topics: Topics, missing: str) -> None:
    admin = AdminClient(settings.client_config())
    wanted = [
        NewTopic(name, num_partitions=partitions, replication_factor=1)
        for name, partitions in topics.partitions(settings).items()
        if name != missing
    ]
    for future in admin.create_topics(wanted).values():
        future.result(30)


def consume_actions(settings: KafkaSettings, topic: str) -> list[CorporateAction]:
    ends = end_offsets(settings, topic)
    consumer = Consumer({**settings.client_config(), "group.id": f"check-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    found: list[CorporateAction] = []
    try:
        while len(found) < sum(ends.values()):
            message = consumer.poll(10)
            assert message is not None and message.error() is None
            found.append(decode(message.value(), CorporateAction))
    finally:
        consumer.close()
    return found


def test_a_split_whose_delivery_failed_is_sent_again_whatever_the_bars_watermark(
    settings_factory: Callable[..., Settings], recordings: Path, tmp_path: Path
) -> None:
    """Defect 4: the split's delivery fails (its topic does not exist yet) while every bar is
    delivered; the next poll has no bar to send, and sends the split again."""
    kafka = KafkaSettings(topic_prefix=f"t{uuid.uuid4().hex[:10]}.")
    topics = Topics(kafka.topic_prefix)
    create_topics_without(kafka, topics, topics.market_actions)
    folder = tmp_path / "recorded"
    folder.mkdir()
    shutil.copy(recordings / "yahoo" / NVDA_FILE, folder / NVDA_FILE)
    settings = replay_settings(settings_factory, folder, "NVDA", kafka=kafka)
    # Short: a message to a missing topic fails once this has passed.
    producer = Producer({**producer_config(kafka, "test-market"), "message.timeout.ms": 2000})
    pool = make_pool(settings.postgres, "test-market")
    health = Health("producer.market")
    try:
        poller = market_loop(
            settings, producer=producer, pool=pool, health=health, stop=threading.Event()
        )
        first = poller.poll()
        assert first.published == 252 and first.actions == 1
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            assert conn.execute("SELECT count(*) FROM producer_actions").fetchone() == (0,)
            marks = conn.execute(
                "SELECT watermark FROM producer_state WHERE key = 'NVDA|1d'"
            ).fetchall()
        assert marks == [(datetime(2022, 1, 28, tzinfo=UTC),)]  # every bar was delivered

        ensure_topics(kafka, topics)  # the topic appears
        second = poller.poll()
    finally:
        pool.close()

    assert second.published == 0 and second.actions == 1
    (split,) = consume_actions(kafka, topics.market_actions)
    assert (split.kind, split.ratio, split.ts.date()) == ("split", 4.0, date(2021, 7, 20))
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        rows = conn.execute("SELECT symbol, kind, ratio FROM producer_actions").fetchall()
    assert rows == [("NVDA", "split", 4.0)]
    third = poll_once(settings)  # a new process knows the split is delivered
    assert third.actions == 0


def shifted_chart(yahoo: Path, name: str, folder: Path) -> list[date]:
    """DERIVED: the recorded chart `name` moved 28 years back, so it starts before the
    calendar's default 2000 (as MSFT's history from 1986 does). Returns its session dates."""
    body = json.loads((yahoo / name).read_text())
    result = body["chart"]["result"][0]
    seconds = int(SHIFT.total_seconds())
    result["timestamp"] = [t - seconds for t in result["timestamp"]]
    for field in ("firstTradeDate",):
        if isinstance(result["meta"].get(field), int):
            result["meta"][field] -= seconds
    (folder / f"derived_{name}").write_text(json.dumps(body))
    return [session_key(t).date() for t in result["timestamp"]]


def test_history_before_2000_is_published_bars_the_exchange_was_shut_are_dropped(
    settings_factory: Callable[..., Settings], topics: Topics, recordings: Path, tmp_path: Path
) -> None:
    """Defect 7: the whole chart used to fail ("… outside the XNYS calendar (2000-01-03..)")."""
    folder = tmp_path / "recorded"
    folder.mkdir()
    days = shifted_chart(recordings / "yahoo", TSLA_FILE, folder)
    assert days[0] == date(1982, 6, 29)
    calendar = exchange_calendars.get_calendar("XNYS", start="1982-01-01")
    sessions = [d for d in days if calendar.is_session(d.isoformat())]
    settings = replay_settings(settings_factory, folder, "TSLA")

    report = poll_once(settings)

    assert not report.failed
    assert report.published == len(sessions) and 3000 < len(sessions) < len(days)
    assert report.dropped == {"outside_session": len(days) - len(sessions)}
    assert sum(end_offsets(settings.kafka, topics.market_bars).values()) == len(sessions)
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        (mark,) = conn.execute("SELECT watermark FROM producer_state WHERE key = 'TSLA|1d'")
    assert mark == (datetime.combine(sessions[-1], datetime.min.time(), UTC),)


def test_a_dead_letter_whose_delivery_failed_holds_the_watermark_and_is_sent_again(
    settings_factory: Callable[..., Settings], recordings: Path, tmp_path: Path
) -> None:
    """Defect 4, dead letters: tracked like the bar they replace, so a failed delivery keeps
    the watermark before it and the next poll sends it again (with the bars after it)."""
    kafka = KafkaSettings(topic_prefix=f"t{uuid.uuid4().hex[:10]}.")
    topics = Topics(kafka.topic_prefix)
    create_topics_without(kafka, topics, topics.deadletter)
    folder = tmp_path / "recorded"
    folder.mkdir()
    body = json.loads((recordings / "yahoo" / NVDA_FILE).read_text())
    result = body["chart"]["result"][0]
    bad = 200  # DERIVED: one unparseable row (a negative volume) in the recorded chart
    result["indicators"]["quote"][0]["volume"][bad] = -5
    (folder / f"derived_{NVDA_FILE}").write_text(json.dumps(body))
    bad_ts = session_key(result["timestamp"][bad])
    settings = replay_settings(settings_factory, folder, "NVDA", kafka=kafka)
    producer = Producer({**producer_config(kafka, "test-market"), "message.timeout.ms": 2000})
    pool = make_pool(settings.postgres, "test-market")
    try:
        poller = market_loop(
            settings,
            producer=producer,
            pool=pool,
            health=Health("producer.market"),
            stop=threading.Event(),
        )
        first = poller.poll()
        assert first.published == 251 and first.dead_letters == 1
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            (mark,) = conn.execute("SELECT watermark FROM producer_state WHERE key = 'NVDA|1d'")
        assert mark[0] < bad_ts  # not past the undelivered dead letter

        ensure_topics(kafka, topics)
        second = poller.poll()
    finally:
        pool.close()
    assert second.dead_letters == 1 and second.published == 251 - bad
    assert sum(end_offsets(kafka, topics.deadletter).values()) == 1
