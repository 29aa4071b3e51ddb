"""The events-only Yahoo request: every split and dividend of a symbol's whole life, HTTP only.

A chart response lists only the events inside its own window, while its prices are adjusted for
every split up to the request (the recorded NVDA 2021-2022 chart already includes the 2024 10:1
split). So the split basis cannot come from the windows a poll fetches: once per poll and symbol
producer.market asks the chart endpoint for the symbol's whole life at the coarsest granularity,
for its `events` only (a few dozen points instead of thousands of daily bars).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from yfinance.data import YfData
from yfinance.exceptions import YFRateLimitError

from producer.api_errors import NotFoundError, error_for_status, retryable_transport
from producer.yahoo_client import UnknownSymbolError
from shared.errors import RetryableError, SourceError

CHART_URL = "https://query2.finance.yahoo.com/v8/finance/chart/{symbol}"
# The coarsest granularity Yahoo serves: the fewest points beside the events.
EVENTS_INTERVAL = "3mo"
# yfinance's own reach for period="max" on daily bars (99 years before the request).
WHOLE_LIFE = timedelta(days=36135)


class EventsClient:
    """Fetches one symbol's chart events over its whole life (no network in `__init__`)."""

    def __init__(self, session: Any, *, timeout_s: float) -> None:
        self._session = session
        self._timeout_s = timeout_s

    def params(self, now: datetime) -> dict[str, str]:
        """The query of an events-only request made at `now`."""
        return {
            "period1": str(int((now - WHOLE_LIFE).timestamp())),
            "period2": str(int(now.timestamp())),
            "interval": EVENTS_INTERVAL,
            "events": "div,splits",
            "includePrePost": "false",
        }

    def fetch(self, symbol: str, now: datetime) -> dict[str, Any]:
        """The raw `chart.result[0]` (its `events` is what matters).

        Raises UnknownSymbolError (HTTP 404), RetryableError (429, 5xx, transport) or SourceError.
        """
        # YfData handles Yahoo's cookie + crumb, as yfinance's own chart calls do.
        data = YfData(session=self._session)
        url = CHART_URL.format(symbol=symbol)
        try:
            response = data.get(url, params=self.params(now), timeout=self._timeout_s)
        except YFRateLimitError:  # yfinance raises on a 429 itself
            raise RetryableError(f"{symbol} events: Yahoo answered HTTP 429") from None
        except OSError as exc:  # requests' and curl_cffi's transport errors, timeouts
            raise retryable_transport(exc, f"{symbol} events") from None
        # The shared status map; on a chart, 404 means Yahoo has no such symbol.
        error = error_for_status(int(response.status_code), f"{symbol}: Yahoo events")
        if isinstance(error, NotFoundError):
            raise UnknownSymbolError(symbol, "Yahoo answered HTTP 404 (no such symbol)")
        if error is not None:
            raise error
        try:
            result = json.loads(response.content)["chart"]["result"][0]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SourceError(f"{symbol} events: unreadable chart body ({exc})") from None
        if not isinstance(result, dict):
            raise SourceError(f"{symbol} events: unreadable chart body")
        return result
