"""One poll of company news per symbol plus market news: overlap window, skip published ids."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from confluent_kafka import KafkaError, Message

from producer.api_errors import ApiAuthError, NotFoundError
from producer.api_poller import PollContext
from producer.finnhub_api import FinnhubApi
from producer.news.parsing import GENERAL, SERVICE, parse_news
from producer.news.published import ArticleRecord
from producer.poll_loop import call_with_retry
from producer.publisher import DeliveryCallback, PublishStoppedError
from producer.watermarks import DeliveryTracker, WatermarkStore
from shared.errors import SourceError
from shared.schemas import Article, encode
from shared.settings import NewsSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


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
        # Per key, the ids this producer sent (its own table, never article_symbols): re-asked
        # overlap days do not publish them again.
        self._articles = ArticleRecord(context.pool, SERVICE)
        self._missing_logged: set[str] = set()
        # As long-lived as the publisher: a report that runs after the flush that gave up on it
        # (the broker was away) lands here, never in a forgotten per-poll tracker.
        self._tracker = DeliveryTracker()

    def poll(self) -> int:
        """Publish every new article; returns how many were published."""
        # Late reports of earlier polls first: a failed article is no longer "sent" and is
        # published again by this poll.
        self._ctx.publisher.serve_reports()
        marks = self._watermarks.load()
        published = 0
        keys = list(self._settings.symbols) + ([GENERAL] if self._settings.general else [])
        for key in keys:
            if self._ctx.stop.is_set() or not self._ctx.gate.open:
                break
            try:
                published += self._poll_key(key, marks.get(key))
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
            except PublishStoppedError:
                break
        undelivered = self._ctx.publisher.flush()
        if undelivered:
            # Still in flight: their reports come later, and until then they bound the watermark.
            self._ctx.health.red(
                "news:kafka", f"{undelivered} article(s) not yet delivered to Kafka"
            )
        else:
            self._ctx.health.green("news:kafka")
        confirmed = self._tracker.confirmed()
        overlap = timedelta(days=self._settings.overlap_days)
        self._articles.store({key: marks[key] - overlap for key in keys if key in marks})
        self._watermarks.advance(confirmed)
        self._tracker.forget(confirmed)
        return published

    def _window(self, watermark: datetime | None) -> tuple[date, date]:
        end = self._settings.until or datetime.now(UTC).date()
        if watermark is None:
            return end - timedelta(days=self._settings.history_days), end
        # Dates, and lists only mostly sorted: re-ask the overlap and skip known ids.
        return watermark.date() - timedelta(days=self._settings.overlap_days), end

    def _poll_key(self, key: str, watermark: datetime | None) -> int:
        if key == GENERAL:
            category = self._settings.general_category
            items = self._retry(lambda: self._api.general_news(category), f"news {category}")
        else:
            start, end = self._window(watermark)
            items = self._retry(
                lambda: self._api.company_news(key, start.isoformat(), end.isoformat()),
                f"company-news {key}",
            )
        parsed = parse_news(key, items, datetime.now(UTC))
        sent = self._articles.known(key, [a.id for a in parsed.articles])
        fresh = [a for a in parsed.articles if a.id not in sent]
        # Every earlier failure of this key is either in `fresh` again or no longer served.
        self._tracker.clear_failures(key)
        topic = self._ctx.topics.news_articles
        for article in fresh:
            self._articles.sent(key, article.id)
            self._ctx.publisher.publish(
                topic, key.encode(), encode(article), self._on_delivery(key, article)
            )
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

    def _retry(self, call: Callable[[], T], what: str) -> T:
        """The one retry around a Finnhub request (the client takes the rate-limit slot)."""
        return call_with_retry(
            call,
            limiter=None,
            stop=self._ctx.stop,
            what=f"Finnhub {what}",
            attempts=self._ctx.retry_attempts,
            backoff_s=self._ctx.retry_backoff_s,
        )

    def _on_delivery(self, key: str, article: Article) -> DeliveryCallback:
        """Track the delivery; a failed article is forgotten as sent, so it is sent again."""
        track = self._tracker.callback(key, article.published_at, article.event_id)

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            track(error, message)
            self._articles.reported(key, article.id, article.published_at, error is None)

        return on_delivery
