"""A symbol written as an SQL injection goes through storage and analytics as data: stored
verbatim (every statement is parameterised or COPY), every table intact."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from shared.kafka import Topics
from shared.settings import Settings
from tests.integration.analytics_run import analytics_running, wait_analyzed
from tests.integration.bar_stream import publish_bars, random_walk_bars
from tests.integration.storage_thread import fast_consumer, storage_running, wait_stored

HOSTILE = "AAPL'; DROP TABLE price_bars;--"


def test_an_injection_shaped_symbol_is_stored_verbatim_and_every_table_survives(
    settings_factory: Callable[..., Settings], topics: Topics
) -> None:
    settings = settings_factory(consumer=fast_consumer())
    bars = random_walk_bars([HOSTILE, "MSFT"], 5, seed=9)
    with storage_running(settings), analytics_running(settings):
        publish_bars(settings.kafka, topics.market_bars, bars)
        wait_stored(settings, topics.market_bars)
        wait_analyzed(settings)
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        stored = conn.execute(
            "SELECT symbol, count(*) FROM price_bars GROUP BY symbol ORDER BY symbol"
        ).fetchall()
        analyzed = conn.execute(
            "SELECT count(*) FROM indicators WHERE symbol = %s", (HOSTILE,)
        ).fetchone()
        tables = {
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert stored == sorted([(HOSTILE, 5), ("MSFT", 5)])
    assert analyzed == (5,)
    assert {"price_bars", "indicators", "dead_letters", "consumer_offsets"} <= tables
