"""Pure parsing of Finnhub news items into Article messages (with VADER sentiment)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from shared import services
from shared.schemas import Article, DeadLetter, dead_letter, event_id

SERVICE = services.PRODUCER_NEWS.name
SOURCE = "finnhub"
GENERAL = "_general"  # the key of market-wide news


@dataclass
class ParsedNews:
    articles: list[Article] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    # The lexicon ships in the wheel; loading it once per process is enough.
    return SentimentIntensityAnalyzer()


def sentiment(headline: str, summary: str | None) -> float:
    """VADER's compound score of headline + summary, in [-1, 1]."""
    text = f"{headline}. {summary}" if summary else headline
    return float(_analyzer().polarity_scores(text)["compound"])


def article_id(item: dict[str, Any]) -> str:
    """Finnhub's id, or a hash of the url where there is none."""
    if item.get("id"):
        return str(item["id"])
    url = item.get("url")
    if not url:
        raise ValueError("neither id nor url")
    return "url:" + hashlib.sha256(str(url).encode()).hexdigest()[:32]


def _published(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"datetime {value!r} is not Unix seconds")
    return datetime.fromtimestamp(value, UTC)


def parse_news(symbol: str, items: Any, now: datetime) -> ParsedNews:
    """Each item as an Article for `symbol`; unparseable items become dead letters."""
    parsed = ParsedNews()
    if not isinstance(items, list):
        items = [items]
    for item in items:
        try:
            if not isinstance(item, dict):
                raise ValueError("not an object")
            if "datetime" not in item:
                raise ValueError("datetime is missing")
            published = _published(item["datetime"])
            headline = item.get("headline")
            if not isinstance(headline, str) or not headline:
                raise ValueError("headline is missing")
            ident = article_id(item)
        except ValueError as exc:
            reason = f"unparseable Finnhub article for {symbol}: {exc}"
            parsed.dead_letters.append(dead_letter(SERVICE, SOURCE, symbol, reason, item, now))
            continue
        summary = item.get("summary") or None
        parsed.articles.append(
            Article(
                event_id=event_id(SOURCE, f"{symbol}|{ident}", "news", published),
                source=SOURCE,
                symbol=symbol,
                id=ident,
                published_at=published,
                headline=headline,
                summary=summary,
                publisher=item.get("source") or None,
                url=item.get("url") or None,
                category=item.get("category") or None,
                sentiment=sentiment(headline, summary),
            )
        )
    return parsed
