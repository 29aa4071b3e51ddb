"""producer.news's run loop on the producers' polling framework, and a one-shot poll."""

from __future__ import annotations

import threading

from psycopg_pool import ConnectionPool

from producer.finnhub_api import build_finnhub
from producer.news.parsing import SERVICE
from producer.news.plan import NewsPlan
from producer.news.published import ArticleRecord
from producer.polling import retry_policy, run_plan
from shared.health import Health
from shared.settings import Settings


def news_plan(
    settings: Settings, pool: ConnectionPool, health: Health, stop: threading.Event
) -> NewsPlan:
    """The process's plan: one Finnhub client (one rate limit), its record of published ids."""
    api, gate = build_finnhub(settings, stop, health)
    articles = ArticleRecord(pool, SERVICE)
    return NewsPlan(
        settings.news, api=api, gate=gate, articles=articles, retry=retry_policy(settings, stop)
    )


def run(settings: Settings, stop: threading.Event, health: Health, *, once: bool = False) -> int:
    """Poll every NEWS_POLL_INTERVAL_S until `stop` (or once); returns articles published once."""
    interval_s = settings.news.poll_interval_s
    report = run_plan(settings, SERVICE, news_plan, health, stop, interval_s=interval_s, once=once)
    return report.published if report else 0
