"""Recognise recorded Finnhub /company-news, /news and /stock/profile2 bodies by their content."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from producer.replay.recorded import RecordedFile

FINNHUB_HOSTS = frozenset({"api.finnhub.io", "finnhub.io"})
COMPANY_NEWS = "company-news"
GENERAL_NEWS = "news"
PROFILE2 = "stock/profile2"
_ARTICLE_KEYS = {"category", "datetime", "headline", "id", "related", "source", "summary", "url"}


def _stamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else None


def read_finnhub(path: Path, body: Any) -> RecordedFile | None:
    """A Finnhub news list (company news when every item names one symbol) or a profile2 body."""
    if isinstance(body, dict) and isinstance(body.get("ticker"), str) and "finnhubIndustry" in body:
        return RecordedFile(path, "finnhub", PROFILE2, status=200, key=body["ticker"].upper())
    if not isinstance(body, list) or not body:
        return None
    if not all(isinstance(item, dict) and _ARTICLE_KEYS <= item.keys() for item in body):
        return None
    related = {item["related"] for item in body}
    stamps = sorted(s for s in (_stamp(item["datetime"]) for item in body) if s is not None)
    symbol = related.pop() if len(related) == 1 else ""
    return RecordedFile(
        path,
        "finnhub",
        COMPANY_NEWS if symbol else GENERAL_NEWS,
        status=200,
        key=symbol.upper() or None,
        first=stamps[0] if stamps else None,
        last=stamps[-1] if stamps else None,
    )
