"""finnhub-python on our session: one rate limiter, retries, and errors mapped to ours."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import finnhub
import requests
from finnhub.exceptions import FinnhubAPIException, FinnhubRequestException

from producer.api_errors import ApiAuthError, ApiGate, NotFoundError, retryable_transport
from producer.data_source import build_session
from producer.poll_loop import RateLimiter, call_with_retry
from producer.replay.index import ReplayIndex
from shared.errors import RetryableError, SourceError
from shared.health import Health
from shared.settings import DataSource, Settings

T = TypeVar("T")


class FinnhubApi:
    """The Finnhub calls this pipeline makes, through finnhub.Client's real request path."""

    def __init__(
        self,
        session: requests.Session,
        api_key: str | None,
        *,
        limiter: RateLimiter,
        stop: threading.Event,
        timeout_s: float,
    ) -> None:
        self._client = finnhub.Client(api_key=api_key or "")
        # The client keeps a requests.Session: ours carries replay/recording and observers.
        session.headers.update(self._client._session.headers)
        session.params["token"] = api_key or ""  # type: ignore[index]
        self._client._session = session
        self._client.DEFAULT_TIMEOUT = timeout_s
        self._limiter = limiter
        self._stop = stop

    def _call(self, what: str, call: Callable[[], T]) -> T:
        def attempt() -> T:
            try:
                return call()
            except FinnhubAPIException as exc:
                status = exc.status_code
                if status in (401, 403):
                    raise ApiAuthError(f"{what}: HTTP {status} {exc.message}") from None
                if status == 429 or status >= 500:
                    raise RetryableError(f"{what}: HTTP {status}") from None
                if status == 404:
                    raise NotFoundError(f"{what}: HTTP 404") from None
                raise SourceError(f"{what}: HTTP {status} {exc.message}") from None
            except FinnhubRequestException as exc:
                raise SourceError(f"{what}: {str(exc)[:200]}") from None
            except (requests.Timeout, requests.ConnectionError) as exc:
                raise retryable_transport(exc, what) from None

        return call_with_retry(attempt, limiter=self._limiter, stop=self._stop, what=what)

    def company_news(self, symbol: str, start: str, end: str) -> list[dict[str, Any]]:
        return self._call(
            f"Finnhub company-news {symbol}",
            lambda: self._client.company_news(symbol, _from=start, to=end),
        )

    def general_news(self, category: str) -> list[dict[str, Any]]:
        return self._call(
            f"Finnhub news {category}", lambda: self._client.general_news(category, min_id=0)
        )

    def profile2(self, symbol: str) -> dict[str, Any]:
        return self._call(
            f"Finnhub profile2 {symbol}", lambda: self._client.company_profile2(symbol=symbol)
        )


def build_finnhub(
    settings: Settings,
    stop: threading.Event,
    health: Health,
    index: ReplayIndex | None = None,
    *,
    feature: str = "",
) -> tuple[FinnhubApi, ApiGate]:
    """The process's Finnhub client (one limiter) and whether it may be called.

    `feature`: the part of the service that needs Finnhub, when not all of it (health's note).
    """
    key = settings.api.finnhub_api_key
    gate = ApiGate(
        "Finnhub",
        health,
        key_setting="FINNHUB_API_KEY",
        key_present=key is not None,
        live=settings.source.data_source is DataSource.LIVE,
        feature=feature,
    )
    api = FinnhubApi(
        build_session(settings.source, index, browser=False),  # type: ignore[arg-type]
        key.get_secret_value() if key else None,
        limiter=RateLimiter(settings.api.finnhub_requests_per_minute),
        stop=stop,
        timeout_s=settings.source.http_timeout_s,
    )
    return api, gate
