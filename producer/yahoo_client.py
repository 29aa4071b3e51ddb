"""Yahoo chart data through yfinance's request path: HTTP only; turning it into bars is
producer.market.parsing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import yfinance as yf
from yfinance.data import YfData
from yfinance.exceptions import (
    YFException,
    YFPricesMissingError,
    YFRateLimitError,
    YFTickerMissingError,
)

from producer.api_errors import NotFoundError, error_for_status
from shared.errors import RetryableError, SourceError
from shared.redaction import describe_error

if TYPE_CHECKING:
    from producer.data_source import ObservableSession


class UnknownSymbolError(NotFoundError):
    """Yahoo answered 404: it has no such symbol."""

    def __init__(self, symbol: str, reason: str) -> None:
        super().__init__(f"{symbol}: {reason}")
        self.symbol = symbol


@dataclass(frozen=True)
class ChartFetch:
    """One chart request's result: the chart Yahoo sent (the response's `chart.result[0]`;
    None when Yahoo sent no result, e.g. no bars in the window)."""

    symbol: str
    interval: str
    start: datetime
    end: datetime
    chart: dict[str, Any] | None
    fetched_at: datetime


class YahooClient:
    """Fetches one symbol's chart per request.

    yfinance's `Ticker.history` makes the request (its crumb and cookies, its checks of the
    answer, its errors mapped below); the chart is read from the response it received, and
    the frame it builds is not used: producer.market.parsing parses the chart itself.

    Yahoo's /v8/finance/chart/{SYMBOL} takes exactly one symbol, and yf.download() only runs
    one Ticker.history() per symbol in threads (yfinance multi.py `_download_one`): there is no
    multi-symbol chart request to batch into, so the poll makes one request per symbol.
    """

    def __init__(
        self, session: ObservableSession, timezone: str, *, timeout_s: float, prepost: bool
    ) -> None:
        self._session = session
        self._timezone = timezone
        self._timeout_s = timeout_s
        self._prepost = prepost
        self._chart_response: tuple[int, bytes] | None = None
        session.observers.append(self._observe)
        # Raise instead of logging and returning an empty frame: a 404, a 429 and "no bars in this
        # window" must be told apart.
        yf.config.debug.hide_exceptions = False

    def fetch(self, symbol: str, interval: str, start: datetime, end: datetime) -> ChartFetch:
        """The chart of `symbol` in [start, end).

        Raises UnknownSymbolError (HTTP 404), RetryableError (429, 5xx, transport) or SourceError.
        """
        self._chart_response = None
        # yfinance caches responses to past windows per URL in a process-wide LRU that ignores the
        # session; a replayed or injected response must come from this client's session.
        YfData.cache_get.cache_clear()
        ticker = yf.Ticker(symbol, session=self._session)
        # yfinance would otherwise spend a chart request (or its ~/.cache) on the symbol's time
        # zone; the exchange calendar knows it, and a replay must not depend on a cache.
        ticker._tz = self._timezone
        fetched_at = datetime.now(UTC)
        try:
            frame = ticker.history(
                start=start,
                end=end,
                interval=interval,
                prepost=self._prepost,
                auto_adjust=False,
                keepna=True,
                actions=True,
                timeout=self._timeout_s,
            )
        except YFRateLimitError as exc:
            raise RetryableError(f"{symbol}: Yahoo answered HTTP 429 (rate limited)") from exc
        except YFPricesMissingError as exc:
            self._raise_for_status(symbol, exc)
            if exc.yahoo_reason is not None:
                raise SourceError(
                    f"{symbol}: Yahoo refused the request: {exc.yahoo_reason}"
                ) from exc
            frame = pd.DataFrame()  # Yahoo has no bars in this window (weekend, holiday)
        except YFTickerMissingError as exc:
            raise UnknownSymbolError(symbol, str(exc)) from exc
        except (OSError, ValueError, YFException) as exc:  # transport, timeouts, non-JSON bodies
            self._raise_for_status(symbol, exc)
            raise RetryableError(f"{symbol}: {describe_error(exc)}") from exc  # no crumb
        self._raise_for_status(symbol, None)
        chart = self._chart()
        if chart is None and not frame.empty:  # the response was not the one observed
            raise SourceError(f"{symbol}: yfinance returned bars but no chart response was seen")
        return ChartFetch(symbol, interval, start, end, chart, fetched_at)

    def _observe(self, response: Any) -> None:
        parts = urlsplit(str(response.url))
        if "/v8/finance/chart/" in parts.path and "period1" in parse_qs(parts.query):
            self._chart_response = (int(response.status_code), bytes(response.content))

    def _raise_for_status(self, symbol: str, cause: BaseException | None) -> None:
        """The chart response's status through the shared map: 404 is an unknown symbol, 429
        and 5xx are retried. Other statuses (a refused window, a stale crumb) are left to
        yfinance's own error, which `fetch` maps."""
        status = self._chart_response[0] if self._chart_response else None
        error = error_for_status(status, f"{symbol}: Yahoo chart") if status else None
        if isinstance(error, NotFoundError):
            raise UnknownSymbolError(symbol, "Yahoo answered HTTP 404 (no such symbol)") from cause
        if isinstance(error, RetryableError):
            raise error from cause

    def _chart(self) -> dict[str, Any] | None:
        if self._chart_response is None:
            return None
        try:
            result = json.loads(self._chart_response[1])["chart"]["result"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            return None
        return result if isinstance(result, dict) else None
