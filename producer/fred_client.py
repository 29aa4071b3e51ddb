"""A small FRED client on `requests`: HTTP only (timeouts, replay session, the process's rate
limit per request, pagination, the shared status map); retrying is the caller's."""

from __future__ import annotations

import threading
from typing import Any

import requests

from producer.api_errors import check_response, retryable_transport
from producer.api_gate import ApiGate, key_gate
from producer.data_source import build_session
from producer.poll_loop import RateLimiter
from shared.errors import RetryableError
from shared.health import Health
from shared.redaction import register_secret
from shared.settings import Settings

BASE_URL = "https://api.stlouisfed.org/fred/"


class FredClient:
    """GET /fred/series and /fred/series/observations as parsed JSON (values stay strings).

    FRED takes its key only as the `api_key` query parameter: the key is registered for
    redaction, and transport errors (which repeat the URL) are redacted.
    """

    def __init__(
        self,
        session: Any,
        api_key: str | None,
        *,
        limiter: RateLimiter,
        stop: threading.Event,
        timeout_s: float,
    ) -> None:
        self._session = session
        self._api_key = api_key
        register_secret(api_key)
        self._limiter = limiter
        self._stop = stop
        self._timeout_s = timeout_s

    def _get(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        what = f"FRED {endpoint} {params.get('series_id', '')}".strip()
        query = {**params, "file_type": "json"}
        if self._api_key:
            query["api_key"] = self._api_key
        if not self._limiter.acquire(self._stop):
            raise RetryableError(f"{what}: stopping")
        try:
            response = self._session.get(BASE_URL + endpoint, params=query, timeout=self._timeout_s)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise retryable_transport(exc, what) from None
        check_response(response, what)
        return response.json()

    def series(self, series_id: str) -> dict[str, Any]:
        """The series' metadata (FRED's `seriess[0]`)."""
        body = self._get("series", {"series_id": series_id})
        return body["seriess"][0]

    def observations(
        self, series_id: str, *, observation_start: str | None = None, limit: int = 100_000
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every observation (all pages) and the response's realtime_start.

        A retry of a failed page asks from the first page again: FRED serves up to 100,000
        observations a page, so nearly every series is one page.
        """
        params: dict[str, Any] = {"series_id": series_id, "limit": limit}
        if observation_start:
            params["observation_start"] = observation_start
        observations: list[dict[str, Any]] = []
        realtime_start: str | None = None
        while True:
            body = self._get("series/observations", {**params, "offset": len(observations)})
            realtime_start = realtime_start or body.get("realtime_start")
            page = body.get("observations") or []
            observations.extend(page)
            # `count` is the total: page on while FRED holds more than came back.
            if not page or len(observations) >= int(body.get("count", 0)):
                return observations, realtime_start


def build_fred(
    settings: Settings, stop: threading.Event, health: Health
) -> tuple[FredClient, ApiGate]:
    """The process's FRED client (one limiter) and whether it may be called."""
    gate, key = key_gate("FRED", settings.api.fred_api_key, "FRED_API_KEY", settings, health)
    client = FredClient(
        build_session(settings.source, browser=False),
        key,
        limiter=RateLimiter(settings.api.fred_requests_per_minute),
        stop=stop,
        timeout_s=settings.source.http_timeout_s,
    )
    return client, gate
