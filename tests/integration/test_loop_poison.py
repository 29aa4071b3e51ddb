"""Messages PostgreSQL cannot take, between good ones on every topic: each is dead-lettered
with a reason, its neighbours are stored, and the consumer never restarts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import psycopg

from shared.kafka import Topics
from shared.schemas import Article, Instrument, MacroObservation, encode
from shared.settings import KafkaSettings, PostgresSettings
from tests.integration.bar_stream import (
    as_rows,
    drained,
    minute_bars,
    publish,
    publish_bars,
    stored_bars,
)
from tests.integration.processes import storage_member, wait_for

SYMBOLS = ["AAPL", "MSFT", "NVDA", "SPY"]
AS_OF = datetime(2024, 10, 3, tzinfo=UTC)


def article(n: int, **changes: object) -> Article:
    good = Article(
        event_id=f"a{n}",
        source="test",
        symbol="AAPL",
        id=f"article-{n}",
        published_at=datetime(2024, 10, 2, 12, n, tzinfo=UTC),
        headline=f"headline {n}",
        summary="summary",
        publisher="wire",
        url=f"https://example.org/{n}",
        category="company",
        sentiment=0.1,
    )
    return msgspec.structs.replace(good, **changes)


def instrument(symbol: str, **changes: object) -> Instrument:
    good = Instrument(event_id=f"i{symbol}", source="test", symbol=symbol, as_of=AS_OF, name=symbol)
    return msgspec.structs.replace(good, **changes)


def observation(day: int, **changes: object) -> MacroObservation:
    good = MacroObservation(
        event_id=f"m{day}",
        source="test",
        series_id="GDP",
        obs_date=date(2024, 1, day),
        realtime_start=date(2024, 2, 1),
        value=100.0 + day,
    )
    return msgspec.structs.replace(good, **changes)


def keyed(key: str, message: msgspec.Struct | bytes) -> tuple[bytes, bytes]:
    return key.encode(), message if isinstance(message, bytes) else encode(message)


def dead_letters(pg: PostgresSettings) -> list[tuple[str, int, str]]:
    with psycopg.connect(pg.conninfo()) as conn:
        return conn.execute(
            "SELECT topic, kafka_offset, reason FROM dead_letters ORDER BY topic, kafka_offset"
        ).fetchall()


def scalar(pg: PostgresSettings, query: str) -> object:
    with psycopg.connect(pg.conninfo()) as conn:
        return conn.execute(query).fetchone()[0]  # type: ignore[index]


def test_values_postgres_cannot_hold_are_dead_lettered_on_every_topic(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    bars = minute_bars(SYMBOLS, 3)
    too_big = encode(bars[0]).replace(
        f'"volume":{bars[0].volume}'.encode(), b'"volume":9223372036854775808'
    )
    bad_bars = [
        (b"AAPL", too_big),
        keyed("MSFT", msgspec.structs.replace(bars[3], close=1e151, high=1e151)),
        keyed("NVDA", msgspec.structs.replace(bars[6], source="te\x00st")),
        keyed("SPY", msgspec.structs.replace(bars[9], ts=datetime(2300, 1, 1, tzinfo=UTC))),
    ]
    # Good and bad interleaved on each topic.
    publish_bars(kafka_settings, topics.market_bars, bars[:6])
    publish(kafka_settings, topics.market_bars, bad_bars)
    publish_bars(kafka_settings, topics.market_bars, bars[6:])
    news = [
        keyed("AAPL", article(1)),
        keyed("AAPL", article(2, headline="nul \x00 inside")),
        keyed("AAPL", article(3, published_at=datetime(1850, 1, 1, tzinfo=UTC))),
        keyed("AAPL", article(4)),
    ]
    publish(kafka_settings, topics.news_articles, news)
    snapshots = [
        keyed("AAPL", instrument("AAPL")),
        keyed("MSFT", instrument("MSFT", name="Micro\x00soft")),
        keyed("NVDA", instrument("NVDA", market_cap=1e200)),
        keyed("SPY", instrument("SPY")),
    ]
    publish(kafka_settings, topics.market_instruments, snapshots)
    vintages = [
        keyed("GDP", observation(1)),
        keyed("GDP", observation(2, value=-1e151)),
        keyed("GDP", observation(3, obs_date=date(1850, 1, 1))),
        keyed("GDP", observation(4)),
    ]
    publish(kafka_settings, topics.macro_observations, vintages)

    consumer = storage_member(service_env, tmp_path, group).start()
    try:
        for topic in (
            topics.market_bars,
            topics.news_articles,
            topics.market_instruments,
            topics.macro_observations,
        ):
            wait_for(lambda t=topic: drained(pg_settings, kafka_settings, group, t), 60, topic)
        letters = dead_letters(pg_settings)
        by_topic: dict[str, list[str]] = {}
        for topic, _offset, reason in letters:
            by_topic.setdefault(topic, []).append(reason)
        assert len(by_topic[topics.market_bars]) == 4
        assert len(by_topic[topics.news_articles]) == 2
        assert len(by_topic[topics.market_instruments]) == 2
        assert len(by_topic[topics.macro_observations]) == 2
        reasons = " | ".join(reason for _t, _o, reason in letters)
        for expected in ("bigint", "1e+150", "NUL", "2200", "1900"):
            assert expected in reasons, reasons
        assert stored_bars(pg_settings) == as_rows(bars)
        assert scalar(pg_settings, "SELECT count(*) FROM news_articles") == 2
        assert scalar(pg_settings, "SELECT count(*) FROM instruments") == 2
        assert scalar(pg_settings, "SELECT count(*) FROM macro_observations") == 2
        assert consumer.running  # never restarted: the same process did all of it
        assert consumer.healthz()[0] == 200
    finally:
        assert consumer.stop() == 0, consumer.log()


def test_rows_the_database_rejects_are_found_by_halving_the_batch(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    """A constraint an operator added (valid for the pipeline, refused by Postgres): the batch
    is halved until the refused bars stand alone; they are dead-lettered with the database's
    reason, every other bar of the batch is stored."""
    with psycopg.connect(pg_settings.conninfo()) as conn:
        conn.execute("ALTER TABLE price_bars ADD CONSTRAINT no_poison CHECK (symbol <> 'POISON')")
    bars = minute_bars(SYMBOLS, 25)
    poison = minute_bars(["POISON"], 2)
    publish_bars(kafka_settings, topics.market_bars, bars[:40])
    publish_bars(kafka_settings, topics.market_bars, poison[:1])
    publish_bars(kafka_settings, topics.market_bars, bars[40:70])
    publish_bars(kafka_settings, topics.market_bars, poison[1:])
    publish_bars(kafka_settings, topics.market_bars, bars[70:])
    consumer = storage_member(service_env, tmp_path, group).start()
    try:
        wait_for(
            lambda: drained(pg_settings, kafka_settings, group, topics.market_bars),
            60,
            "the drain",
            detail=consumer.log,
        )
        assert stored_bars(pg_settings) == as_rows(bars)
        letters = dead_letters(pg_settings)
        assert len(letters) == 2
        assert all("rejected by PostgreSQL" in r and "no_poison" in r for _t, _o, r in letters)
        assert consumer.metrics()["pipeline_batch_failures_total"] >= 2
        assert consumer.running and consumer.healthz()[0] == 200
    finally:
        assert consumer.stop() == 0, consumer.log()


def test_a_database_that_rejects_everything_pauses_instead_of_dead_lettering(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    with psycopg.connect(pg_settings.conninfo()) as conn:
        conn.execute("ALTER TABLE price_bars ADD CONSTRAINT nothing CHECK (symbol = 'NOTHING')")
    bars = minute_bars(SYMBOLS, 30)
    publish_bars(kafka_settings, topics.market_bars, bars)
    consumer = storage_member(service_env, tmp_path, group, CONSUMER_REFUSED_RETRY_S="1").start()
    try:
        wait_for(lambda: consumer.healthz()[0] == 503, 60, "the pause")
        assert "rather than dead-letter good data" in str(consumer.healthz()[1]["reasons"])
        letters = len(dead_letters(pg_settings))
        assert 1 <= letters <= 3  # CONSUMER_POISON_MAX_IN_ROW
        with psycopg.connect(pg_settings.conninfo()) as conn:
            conn.execute("ALTER TABLE price_bars DROP CONSTRAINT nothing")
        wait_for(lambda: drained(pg_settings, kafka_settings, group, topics.market_bars), 60, "")
        assert len(stored_bars(pg_settings)) == len(bars) - letters
        wait_for(lambda: consumer.healthz()[0] == 200, 30, "health to recover")
    finally:
        assert consumer.stop() == 0, consumer.log()
