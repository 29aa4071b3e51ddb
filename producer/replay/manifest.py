"""Which recorded response answers a request: method, host, path and the query that matters."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from producer.replay.finnhub_files import FINNHUB_HOSTS, GENERAL_NEWS
from producer.replay.fred_files import OBSERVATIONS, SERIES
from producer.replay.index import ReplayIndex
from producer.replay.recorded import RecordedFile
from producer.replay.yahoo_quote_files import QUOTE_PATH, quotes_symbol
from producer.yahoo_intervals import DAILY, INTERVAL_STEP

logger = logging.getLogger(__name__)

YAHOO_DATA_HOSTS = frozenset({"query1.finance.yahoo.com", "query2.finance.yahoo.com"})
# yfinance's cookie/consent handshake: no data, and a recorded crumb would be a credential.
YAHOO_HANDSHAKE_HOSTS = frozenset({"fc.yahoo.com", "guce.yahoo.com", "consent.yahoo.com"})
CRUMB_PATH = "/v1/test/getcrumb"
CHART_PATH = "/v8/finance/chart/"
# The granularity of producer.market's events-only request (producer/market/events.py).
EVENTS_GRANULARITY = "3mo"
FRED_HOST = "api.stlouisfed.org"
# Query keys worth showing in a log line; anything else (api_key, token, crumb) is never logged.
LOGGED_QUERY_KEYS = (
    "symbol",
    "symbols",
    "interval",
    "period1",
    "period2",
    "range",
    "series_id",
    "category",
)


@dataclass(frozen=True)
class Answer:
    """What the replay transport sends back."""

    status: int
    body: bytes
    content_type: str = "application/json"
    source: Path | None = None


def describe(method: str, url: str) -> str:
    """A request for a log line, without credentials."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    shown = "&".join(f"{k}={query[k][0]}" for k in LOGGED_QUERY_KEYS if k in query)
    return f"{method} {parts.netloc}{parts.path}" + (f"?{shown}" if shown else "")


class Manifest:
    """Maps each request to a recorded file and status; an unmatched request is a 404.

    Yahoo chart requests match on symbol (path), `interval` (= the file's meta.dataGranularity)
    and `includePrePost`, then on time:
    - with `period1`/`period2`: among the files overlapping [period1, period2), those containing
      the whole window win; among those (or, if none contains it, among all overlapping ones)
      the newest recording (meta.regularMarketTime, else its last point) answers. So the
      full-year AAPL 2020 file answers for its own year although the later-recorded split file
      overlaps it, and the split file answers for its own, narrower window.
    - with `range` (no period): the newest file recorded for that same range (meta.range).
    Yahoo quotes match on the (first) requested symbol, newest recording first.
    Finnhub company news and profiles match on `symbol`, general news on its endpoint.
    FRED requests match on endpoint and `series_id` (observations also on `offset`), newest
    `realtime_start` first.
    """

    def __init__(self, index: ReplayIndex) -> None:
        self.index = index
        self._not_found = index.chart_error(404)

    def answer(self, method: str, url: str) -> Answer:
        parts = urlsplit(url)
        # The path as sent is percent-quoted (^GSPC travels as %5EGSPC); recordings name the
        # symbol itself, so match on the unquoted path (the query is unquoted by parse_qs).
        host, path = parts.netloc.lower(), unquote(parts.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if host in YAHOO_HANDSHAKE_HOSTS:
            # yfinance tolerates a failed cookie fetch (and parses this page for a consent form).
            return Answer(404, b"<html></html>", "text/html; charset=utf-8")
        if host in YAHOO_DATA_HOSTS and path == CRUMB_PATH:
            return Answer(200, b"replay-crumb", "text/plain")
        found: RecordedFile | None = None
        if method == "GET" and host in YAHOO_DATA_HOSTS and path.startswith(CHART_PATH):
            found = self._chart(path.removeprefix(CHART_PATH).upper(), query)
        elif method == "GET" and host in YAHOO_DATA_HOSTS and path == QUOTE_PATH:
            symbol = query.get("symbols", "").split(",")[0]
            found = _newest([f for f in self.index.files if quotes_symbol(f, symbol)])
        elif method == "GET" and host == FRED_HOST:
            found = self._fred(path.removeprefix("/fred/"), query)
        elif method == "GET" and host in FINNHUB_HOSTS:
            # finnhub-python sends "/api/v1//company-news" (its paths start with "/").
            found = self._finnhub(path.removeprefix("/api/v1").strip("/"), query)
        if found is not None:
            return Answer(found.status, found.path.read_bytes(), source=found.path)
        logger.warning("replay: no recorded response for %s; answering 404", describe(method, url))
        if host in YAHOO_DATA_HOSTS and path.startswith(CHART_PATH) and self._not_found:
            # Yahoo's own answer for a symbol it has no data for: the client's real 404 path runs.
            return Answer(404, self._not_found.path.read_bytes(), source=self._not_found.path)
        return Answer(404, b"", "text/plain")

    def _chart(self, symbol: str, query: dict[str, str]) -> RecordedFile | None:
        granularity = query.get("interval", "1d")
        prepost = query.get("includePrePost", "false").lower() == "true"
        files = [f for f in self.index.charts(symbol, granularity) if f.prepost == prepost]
        if not files and granularity == EVENTS_GRANULARITY:
            # producer.market's events-only request (its whole life at 3mo, for the events):
            # without a 3mo recording, the symbol's other recordings list the events replay knows.
            files = self.index.charts(symbol)
        if "period1" not in query:
            ranged = [f for f in files if f.range_name and f.range_name == query.get("range")]
            return _newest(ranged)
        try:
            start = datetime.fromtimestamp(int(query["period1"]), UTC)
            end = datetime.fromtimestamp(int(query.get("period2", query["period1"])), UTC)
        except ValueError:
            return None
        step = INTERVAL_STEP.get(granularity, INTERVAL_STEP[DAILY])
        overlapping = [
            f
            for f in files
            if f.first is not None and f.last is not None and f.first < end and start <= f.last
        ]
        # A file contains the window when its points reach from `start` to `end` (its last point
        # covers one step, so a daily file ending 14:30Z contains a window ending that evening).
        containing = [f for f in overlapping if f.first <= start and end <= f.last + step]
        return _newest(containing or overlapping)

    def _fred(self, endpoint: str, query: dict[str, str]) -> RecordedFile | None:
        if endpoint not in (SERIES, OBSERVATIONS) or "series_id" not in query:
            return None
        offset = int(query["offset"]) if query.get("offset", "").isdigit() else 0
        return _newest(
            [
                f
                for f in self.index.files
                if f.provider == "fred"
                and f.endpoint == endpoint
                and f.key == query["series_id"]
                and (endpoint == SERIES or f.offset == offset)
            ]
        )

    def _finnhub(self, endpoint: str, query: dict[str, str]) -> RecordedFile | None:
        # Company news and profiles match on the symbol only (the newest recording answers any
        # date window: a recording is one past window); general news on the endpoint.
        symbol = query.get("symbol", "").upper() or None
        return _newest(
            [
                f
                for f in self.index.files
                if f.provider == "finnhub"
                and f.endpoint == endpoint
                and (endpoint == GENERAL_NEWS or f.key == symbol)
            ]
        )


def _newest(files: list[RecordedFile]) -> RecordedFile | None:
    if not files:
        return None
    epoch = datetime.min.replace(tzinfo=UTC)
    return max(files, key=lambda f: (f.newness or epoch, f.path.name))
