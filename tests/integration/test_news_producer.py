"""producer.news on recorded Finnhub responses through finnhub-python into news_articles."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from producer.news.service import run
from producer.replay.overlay import inject
from shared.health import Health
from shared.kafka import Topics
from shared.settings import DataSource, NewsSettings, Settings, SourceSettings
from tests.integration.bar_stream import end_offsets
from tests.integration.processes import assert_api_idles
from tests.integration.storage_thread import fast_consumer, storage_running, wait_stored

# finnhub-python joins its base URL and paths with a double slash: the real request path.
COMPANY_NEWS_PATH = "/api/v1//company-news"
JSON = {"Content-Type": "application/json"}  # finnhub-python reads only JSON-typed bodies
AAPL_NEWS = "finnhub/company_news_AAPL_2026-05-16_2026-05-23.json"


def news_settings(
    settings_factory: Callable[..., Settings], replay_dir: Path, overlay: Path | None = None
) -> Settings:
    return settings_factory(
        source=SourceSettings(
            data_source=DataSource.REPLAY, replay_dir=replay_dir, replay_overlay_dir=overlay
        ),
        news=NewsSettings(symbols=["AAPL", "MSFT"], until="2026-05-23"),
        consumer=fast_consumer(),
    )


def expected_articles(items: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """Computed from the JSON: Finnhub's id, datetime as UTC, headline."""
    return {
        (str(i["id"]), datetime.fromtimestamp(i["datetime"], UTC), i["headline"]) for i in items
    }


def stored(settings: Settings) -> tuple[set[tuple[Any, ...]], set[tuple[str, str]]]:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        articles = conn.execute("SELECT id, published_at, headline FROM news_articles").fetchall()
        links = conn.execute("SELECT article_id, symbol FROM article_symbols").fetchall()
        sentiments = conn.execute("SELECT min(sentiment), max(sentiment) FROM news_articles")
        low, high = sentiments.fetchone() or (None, None)
    if articles:
        assert -1 <= low <= high <= 1
    return set(articles), set(links)


def test_recorded_news_is_stored_exactly_once_per_article_and_reruns_add_nothing(
    settings_factory: Callable[..., Settings], topics: Topics, recordings: Path, tmp_path: Path
) -> None:
    recorded = tmp_path / "recorded"
    (recorded / "finnhub").mkdir(parents=True)
    aapl: list[dict[str, Any]] = json.loads((recordings / AAPL_NEWS).read_text())
    (recorded / "finnhub" / "aapl.json").write_text(json.dumps(aapl))
    # DERIVED, not recorded: three of AAPL's articles as Finnhub would list them for MSFT too,
    # so the same article reaches storage under two symbols.
    msft = [{**item, "related": "MSFT"} for item in aapl[:3]]
    (recorded / "finnhub" / "msft.json").write_text(json.dumps(msft))
    settings = news_settings(settings_factory, recorded)

    expected = expected_articles(aapl)
    links = {(str(i["id"]), "AAPL") for i in aapl} | {(str(i["id"]), "MSFT") for i in msft}
    with storage_running(settings):
        published = run(settings, threading.Event(), Health("producer.news"), once=True)
        assert published == len(aapl) + len(msft)
        wait_stored(settings, topics.news_articles)
        assert stored(settings) == (expected, links)

        before = end_offsets(settings.kafka, topics.news_articles)
        assert run(settings, threading.Event(), Health("producer.news"), once=True) == 0
        assert end_offsets(settings.kafka, topics.news_articles) == before
        assert stored(settings) == (expected, links)


def test_injected_429_is_retried_and_a_malformed_article_is_dead_lettered(
    settings_factory: Callable[..., Settings], topics: Topics, recordings: Path, tmp_path: Path
) -> None:
    overlay = tmp_path / "overlay"
    settings = news_settings(settings_factory, recordings, overlay)
    aapl: list[dict[str, Any]] = json.loads((recordings / AAPL_NEWS).read_text())
    broken = [dict(item) for item in aapl]
    del broken[7]["datetime"]  # INJECTED: a malformed article
    entry = inject(
        overlay,
        "aapl-news",
        path=COMPANY_NEWS_PATH,
        query={"symbol": "AAPL"},
        responses=[
            {"status": 429, "body": {"error": "API limit reached"}},
            {"status": 200, "body": broken, "headers": JSON},
        ],
    )
    with storage_running(settings):
        published = run(settings, threading.Event(), Health("producer.news"), once=True)
        assert published == len(aapl) - 1
        wait_stored(settings, topics.news_articles, topics.deadletter)
        articles, _ = stored(settings)
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            letters = conn.execute("SELECT service, reason, payload FROM dead_letters").fetchall()
    assert not entry.exists()
    assert articles == expected_articles(broken[:7] + broken[8:])
    assert len(letters) == 1
    service, reason, payload = letters[0]
    assert service == "producer.news" and "datetime is missing" in reason
    assert json.loads(bytes(payload))["id"] == aapl[7]["id"]


def test_401_stops_calling_finnhub_with_one_message_and_red_health_but_stays_up(
    service_env: dict[str, str], recordings: Path, tmp_path: Path
) -> None:
    overlay = tmp_path / "overlay"
    # INJECTED: Finnhub refuses the key; three answers queued, only the first may be asked for.
    refused = inject(
        overlay,
        "finnhub-401",
        path=COMPANY_NEWS_PATH,
        responses=[{"status": 401, "body": {"error": "Invalid API key"}}] * 3,
    )
    assert_api_idles(
        "producer.news",
        service_env,
        tmp_path,
        "Finnhub refused the API key",
        refused,
        DATA_SOURCE="replay",
        REPLAY_DIR=str(recordings),
        REPLAY_OVERLAY_DIR=str(overlay),
        NEWS_POLL_INTERVAL_S="0.5",
    )
