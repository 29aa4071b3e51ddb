"""The HTTP session API clients run on: live, live and recording, or replayed from files."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from producer.replay.adapters import RecordingAdapter, ReplayAdapter
from producer.replay.index import ReplayIndex
from producer.replay.manifest import Manifest
from producer.replay.overlay import Overlay
from shared.metrics import API_REQUESTS
from shared.settings import DataSource, SourceSettings

logger = logging.getLogger(__name__)

ResponseObserver = Callable[[Any], None]


class ObservableSession(Protocol):
    """A requests- or curl_cffi-style session that shows each response to its observers."""

    observers: list[ResponseObserver]


# What yfinance's own fallback sends when it has to use plain requests (Yahoo refuses the default).
BROWSER_HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    ),
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
}


# Hosts of the external APIs -> the `api` label of pipeline_api_requests_total (bounded).
_API_HOSTS = (("yahoo.com", "yahoo"), ("finnhub.io", "finnhub"), ("stlouisfed.org", "fred"))


def api_of(url: str) -> str:
    """Which API a request goes to: yahoo, finnhub, fred, or other."""
    host = urlsplit(url).hostname or ""
    return next((api for suffix, api in _API_HOSTS if host.endswith(suffix)), "other")


class _Observed:
    """Shows each response to its observers: yfinance keeps status codes and raw bodies hidden."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.observers: list[ResponseObserver] = []

    def request(self, *args: Any, **kwargs: Any) -> Any:
        api = api_of(str(kwargs.get("url", args[1] if len(args) > 1 else "")))
        try:
            response = super().request(*args, **kwargs)  # type: ignore[misc]
        except Exception:
            API_REQUESTS.labels(api, "error").inc()  # no response: timeout, refused, …
            raise
        API_REQUESTS.labels(api, str(response.status_code)).inc()
        for observe in self.observers:
            observe(response)
        return response


class ObservedSession(_Observed, requests.Session):
    """A requests.Session whose responses are observed (replay, record, tests)."""


try:
    from curl_cffi import requests as curl_requests

    class ObservedCurlSession(_Observed, curl_requests.Session):  # type: ignore[misc]
        """yfinance's own default transport (curl_cffi impersonating Chrome), observed."""

except ImportError:  # yfinance falls back to requests then, and so do we
    curl_requests = None


def replay_session(index: ReplayIndex, overlay_dir: Path | None = None) -> ObservedSession:
    """A session answering from the indexed recorded files (after the overlay's injections)."""
    adapter = ReplayAdapter(Manifest(index), Overlay(overlay_dir) if overlay_dir else None)
    session = ObservedSession()
    # Both schemes: nothing may reach the network in replay.
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def build_session(
    source: SourceSettings, index: ReplayIndex | None = None, *, browser: bool = True
) -> ObservableSession:
    """The session for DATA_SOURCE: replay (from `index`, else REPLAY_DIR), recording, or live.

    Live without RECORD_DIR uses the transport yfinance would pick itself (curl_cffi
    impersonating Chrome when installed), only observed. `browser=False` (Finnhub, FRED: plain
    JSON APIs with keys) gives a plain requests.Session without browser headers.
    """
    if source.data_source is DataSource.REPLAY:
        logger.info("replaying recorded responses from %s", source.replay_dir)
        index = index or ReplayIndex.scan(source.replay_dir)
        return replay_session(index, source.replay_overlay_dir)
    if browser and source.record_dir is None and curl_requests is not None:
        return ObservedCurlSession(impersonate="chrome")
    session = ObservedSession()
    if browser:
        session.headers.update(BROWSER_HEADERS)
    if source.record_dir is not None:
        logger.info("recording every raw response to %s", source.record_dir)
        session.mount("https://", RecordingAdapter(source.record_dir))
    return session
