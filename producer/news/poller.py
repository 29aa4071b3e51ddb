"""One poll of company news per symbol plus market news: overlap window, skip published ids."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from producer.api_errors import ApiAuthError, NotFoundError
from producer.api_poller import PollContext
from producer.finnhub_api import FinnhubApi
from producer.news.parsing import GENERAL, SERVICE, parse_news
from producer.watermarks import DeliveryTracker, WatermarkStore
from shared.errors import SourceError
from shared.schemas import encode
from shared.settings import NewsSettings

logger = logging.getLogger(__name__)

# Ids already stored for a key: re-asked overlap days must not publish them again.
SELECT_STORED_IDS = """
SELECT article_id FROM article_symbols WHERE symbol = %s AND article_id = ANY(%s)
"""


class NewsPoller:
    """Asks Finnhub per symbol from (newest published day − overlap) to today."""

    def __init__(
        self,
        settings: NewsSettings,
        *,
        api: FinnhubApi,
        context: PollContext,
    ) -> None:
        self._settings = settings
        self._api = api
        self._ctx = context
        self._watermarks = WatermarkStore(context.pool, SERVICE)
        # Per key, ids this process published that the table did not show yet: not sent twice.
        # Only ids the latest response still carries are kept (bounded by one response).
        self._published: dict[str, set[str]] = {}
        self._missing_logged: set[str] = set()

    def poll(self) -> int:
        """Publish every new article; returns how many were published."""
        marks = self._watermarks.load()
        tracker = DeliveryTracker()
        published = 0
        keys = list(self._settings.symbols) + ([GENERAL] if self._settings.general else [])
        for key in keys:
            if self._ctx.stop.is_set() or not self._ctx.gate.open:
                break
            try:
                published += self._poll_key(key, marks.get(key), tracker)
                self._ctx.health.green(f"news:{key}")
            except ApiAuthError as exc:
                self._ctx.gate.close(
                    f"Finnhub refused the API key, not calling Finnhub again: {exc}"
                )
            except NotFoundError as exc:
                if key not in self._missing_logged:
                    self._missing_logged.add(key)
                    logger.warning("no news for %s: %s", key, exc)
            except SourceError as exc:
                self._ctx.health.red(f"news:{key}", f"Finnhub news {key}: {exc}")
        self._ctx.publisher.flush()
        for key in tracker.failed_keys():
            self._published.pop(key, None)  # undelivered: sent again by the next poll
        self._watermarks.advance(tracker.confirmed())
        return published

    def _window(self, watermark: datetime | None) -> tuple[date, date]:
        end = self._settings.until or datetime.now(UTC).date()
        if watermark is None:
            return end - timedelta(days=self._settings.history_days), end
        # Dates, and lists only mostly sorted: re-ask the overlap and skip known ids.
        return watermark.date() - timedelta(days=self._settings.overlap_days), end

    def _poll_key(self, key: str, watermark: datetime | None, tracker: DeliveryTracker) -> int:
        if key == GENERAL:
            items = self._api.general_news(self._settings.general_category)
        else:
            start, end = self._window(watermark)
            items = self._api.company_news(key, start.isoformat(), end.isoformat())
        parsed = parse_news(key, items, datetime.now(UTC))
        with self._ctx.pool.connection() as conn:
            ids = [a.id for a in parsed.articles]
            stored = {row[0] for row in conn.execute(SELECT_STORED_IDS, (key, ids)).fetchall()}
        pending = self._published.setdefault(key, set())
        pending &= set(ids)
        pending -= stored  # stored now: the table answers for them from here on
        fresh = [a for a in parsed.articles if a.id not in stored and a.id not in pending]
        topic = self._ctx.topics.news_articles
        for article in fresh:
            pending.add(article.id)
            callback = tracker.callback(key, article.published_at, article.event_id)
            self._ctx.publisher.publish(topic, key.encode(), encode(article), callback)
        for letter in parsed.dead_letters:
            self._ctx.publisher.publish(self._ctx.topics.deadletter, key.encode(), encode(letter))
        if fresh or parsed.dead_letters:
            logger.info(
                "%s: %d new article(s), %d dead letter(s)",
                key,
                len(fresh),
                len(parsed.dead_letters),
            )
        return len(fresh)
