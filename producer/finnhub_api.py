"""finnhub-python on our session: HTTP only (one request per call, in the process's rate limit),
errors mapped by the shared status map; retrying is the caller's, once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import finnhub
import requests
from finnhub.exceptions import FinnhubAPIException, FinnhubRequestException

from producer.api_errors import error_for_status, retryable_transport
from producer.api_gate import ApiGate, key_gate
from producer.data_source import build_session
from producer.poll_loop import RateLimiter
from producer.replay.index import ReplayIndex
from shared.errors import RetryableError, SourceError
from shared.health import Health
from shared.redaction import redact, register_secret
from shared.settings import Settings

T = TypeVar("T")

# Finnhub takes the key in this header as well as in the `token` query parameter; a header never
# appears in a URL, so never in an error message that repeats one.
TOKEN_HEADER = "X-Finnhub-Token"  # noqa: S105 (a header name, not a secret)


class FinnhubApi:
    """The Finnhub calls this pipeline makes, through finnhub.Client's real request path.

    Each call is one request: a 429 or 5xx raises RetryableError for the caller's retry (the
    news poll's, or the market poll's around the whole instrument snapshot), so retries never
    nest.
    """

    def __init__(
        self,
        session: requests.Session,
        api_key: str | None,
        *,
        limiter: RateLimiter,
        stop: threading.Event,
        timeout_s: float,
    ) -> None:
        self._client = finnhub.Client(api_key="")
        # The client keeps a requests.Session: ours carries replay/recording and observers. The
        # key goes in a header, not in the client's `token` query parameter.
        session.headers.update(self._client._session.headers)
        if api_key:
            register_secret(api_key)
            session.headers[TOKEN_HEADER] = api_key
        self._client._session = session
        self._client.DEFAULT_TIMEOUT = timeout_s
        self._limiter = limiter
        self._stop = stop

    def _call(self, what: str, call: Callable[[], T]) -> T:
        if not self._limiter.acquire(self._stop):
            raise RetryableError(f"{what}: stopping")
        try:
            return call()
        except FinnhubAPIException as exc:
            raise error_for_status(exc.status_code, what, str(exc.message)) or SourceError(
                redact(f"{what}: {exc}")
            ) from None
        except FinnhubRequestException as exc:
            raise SourceError(redact(f"{what}: {str(exc)[:200]}")) from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise retryable_transport(exc, what) from None

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
    key_setting = "FINNHUB_API_KEY"
    gate, key = key_gate(
        "Finnhub", settings.api.finnhub_api_key, key_setting, settings, health, feature
    )
    api = FinnhubApi(
        build_session(settings.source, index, browser=False),  # type: ignore[arg-type]
        key,
        limiter=RateLimiter(settings.api.finnhub_requests_per_minute),
        stop=stop,
        timeout_s=settings.source.http_timeout_s,
    )
    return api, gate
