"""producer.news's plan: company news per symbol plus market news, over an overlap window,
skipping the ids this producer already published."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from confluent_kafka import KafkaError, Message

from producer.api_gate import ApiGate
from producer.finnhub_api import FinnhubApi
from producer.news.parsing import GENERAL, parse_news
from producer.news.published import ArticleRecord
from producer.plans import ApiPlan, Poll, PollReport
from producer.poll_loop import RetryPolicy
from producer.publisher import DeliveryCallback
from shared.health import Health
from shared.schemas import Article, encode
from shared.settings import NewsSettings


class NewsPlan(ApiPlan):
    """Asks Finnhub per symbol from (newest published day − overlap) to today."""

    def __init__(
        self,
        settings: NewsSettings,
        *,
        api: FinnhubApi,
        gate: ApiGate,
        articles: ArticleRecord,
        retry: RetryPolicy,
    ) -> None:
        super().__init__(gate, retry)
        self._settings = settings
        self._api = api
        # Per key, the ids this producer sent (its own table, never article_symbols): re-asked
        # overlap days do not publish them again.
        self._articles = articles

    def keys(self) -> Iterable[str]:
        return list(self._settings.symbols) + ([GENERAL] if self._settings.general else [])

    def health_key(self, key: str) -> str:
        return f"news:{key}"

    def describe(self, key: str) -> str:
        return f"Finnhub news {key}"

    def finish(self, poll: Poll[PollReport], health: Health) -> None:
        overlap = timedelta(days=self._settings.overlap_days)
        marks = poll.watermarks
        self._articles.store({key: marks[key] - overlap for key in self.keys() if key in marks})

    def poll_key(self, key: str, poll: Poll[PollReport]) -> None:
        if key == GENERAL:
            category = self._settings.general_category
            items = self.ask(lambda: self._api.general_news(category), f"Finnhub news {category}")
        else:
            start, end = self._window(poll.watermarks.get(key))
            items = self.ask(
                lambda: self._api.company_news(key, start.isoformat(), end.isoformat()),
                f"Finnhub company-news {key}",
            )
        parsed = parse_news(key, items, datetime.now(UTC))
        sent = self._articles.known(key, [a.id for a in parsed.articles])
        fresh = [a for a in parsed.articles if a.id not in sent]
        outlet = poll.outlet
        # Every earlier failure of this key is either in `fresh` again or no longer served.
        outlet.resend(key)
        for article in fresh:
            self._articles.sent(key, article.id)
            outlet.publish(
                outlet.topics.news_articles,
                key.encode(),
                encode(article),
                outlet.track(
                    key, article.published_at, article.event_id, self._reported(key, article)
                ),
            )
        poll.count(key, len(fresh), parsed.dead_letters, "article")

    def _window(self, watermark: datetime | None) -> tuple[date, date]:
        end = self._settings.until or datetime.now(UTC).date()
        if watermark is None:
            return end - timedelta(days=self._settings.history_days), end
        # Dates, and lists only mostly sorted: re-ask the overlap and skip known ids.
        return watermark.date() - timedelta(days=self._settings.overlap_days), end

    def _reported(self, key: str, article: Article) -> DeliveryCallback:
        """A failed article is forgotten as sent, so the next poll sends it again."""

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            self._articles.reported(key, article.id, article.published_at, error is None)

        return on_delivery
