"""Fuzz: malformed messages of every kind (tests/malformed.py) interleaved with good ones on
every topic the consumers read: each bad one is a dead letter with a reason (once per consumer
that reads it), each good one is stored, and neither consumer restarts.

`make test` publishes FUZZ_MESSAGES=600 bad messages; the long form: FUZZ_MESSAGES=10000.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import psycopg

from shared.kafka import Topics
from shared.schemas import (
    Article,
    Bar,
    CorporateAction,
    DeadLetter,
    Instrument,
    MacroObservation,
    encode,
)
from shared.settings import KafkaSettings, PostgresSettings
from tests.integration.bar_stream import drained, publish
from tests.integration.processes import FAST_MEMBER, ServiceProcess, wait_for
from tests.malformed import KINDS, good_message, malformed

BAD = int(os.environ.get("FUZZ_MESSAGES", "600"))
# What each topic's good messages become: (table, SQL counting them).
STORED = {
    Bar: "SELECT count(*) FROM price_bars",
    Article: "SELECT count(*) FROM news_articles",
    CorporateAction: "SELECT count(*) FROM corporate_actions",
    Instrument: "SELECT count(*) FROM instruments",
    MacroObservation: "SELECT count(*) FROM macro_observations",
    DeadLetter: "SELECT count(*) FROM dead_letters WHERE service = 'market'",
}


def topic_of(topics: Topics, model: type) -> str:
    return {
        Bar: topics.market_bars,
        Article: topics.news_articles,
        CorporateAction: topics.market_actions,
        Instrument: topics.market_instruments,
        MacroObservation: topics.macro_observations,
        DeadLetter: topics.deadletter,
    }[model]


def test_malformed_messages_on_every_topic_are_dead_lettered_and_good_ones_stored(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    rng = random.Random(20261202)  # noqa: S311 (reproducible test data, not secrets)
    per_topic = max(1, BAD // len(STORED))
    sent: dict[type, tuple[int, int]] = {}
    for model in STORED:
        messages = []
        for n in range(per_topic):
            good = encode(good_message(model, n))
            messages.append((f"k{n % 7}".encode(), good))
            kind = KINDS[n % len(KINDS)]  # every kind on every topic
            messages.append((f"k{n % 7}".encode(), malformed(good, model, kind, rng)))
        publish(kafka_settings, topic_of(topics, model), messages)
        sent[model] = (per_topic, per_topic)  # (good, bad)

    storage = ServiceProcess(
        "consumer.storage", service_env, tmp_path, CONSUMER_GROUP_STORAGE=group, **FAST_MEMBER
    ).start()
    analytics = ServiceProcess(
        "analytics.consumer",
        service_env,
        tmp_path,
        CONSUMER_GROUP_ANALYTICS=f"{group}-a",
        **FAST_MEMBER,
    ).start()
    try:
        for model in STORED:
            topic = topic_of(topics, model)
            wait_for(lambda t=topic: drained(pg_settings, kafka_settings, group, t), 120, topic)
        wait_for(
            lambda: drained(pg_settings, kafka_settings, f"{group}-a", topics.market_bars),
            120,
            "analytics",
        )
        with psycopg.connect(pg_settings.conninfo()) as conn:
            letters = conn.execute(
                "SELECT service, topic, count(*), count(*) FILTER (WHERE reason = '')"
                " FROM dead_letters WHERE service <> 'market' GROUP BY service, topic"
            ).fetchall()
            stored = {model: conn.execute(query).fetchone()[0] for model, query in STORED.items()}  # type: ignore[index]
        expected = {
            ("consumer.storage", topic_of(topics, m), bad, 0) for m, (_, bad) in sent.items()
        }
        expected.add(("analytics.consumer", topics.market_bars, sent[Bar][1], 0))
        assert set(letters) == expected
        assert stored == {model: good for model, (good, _) in sent.items()}
        # Neither exited (a crash would, and nothing restarts them here) and both are green.
        assert storage.running and analytics.running
        assert storage.healthz()[0] == 200 and analytics.healthz()[0] == 200
    finally:
        assert storage.stop() == 0, storage.log()
        assert analytics.stop() == 0, analytics.log()
