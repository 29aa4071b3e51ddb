"""Fetching one symbol for producer.market: Yahoo's whole-life events, then each window's chart,
parsed on the split basis those give (HTTP through the clients, parsing in parsing.py)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from producer.market.actions import chart_actions, splits_by_day
from producer.market.events import EventsClient
from producer.market.parsing import ParsedChart, parse_chart
from producer.market.windows import Window
from producer.poll_loop import RateLimiter, call_with_retry
from producer.yahoo_client import YahooClient
from shared.calendar import get_calendar
from shared.errors import SourceError
from shared.schemas import CorporateAction
from shared.settings import MarketSettings


class SymbolFetcher:
    """Requests and parses what one poll needs of a symbol (retried within the rate limit)."""

    def __init__(
        self,
        market: MarketSettings,
        *,
        client: YahooClient,
        events: EventsClient,
        limiter: RateLimiter,
        stop: threading.Event,
        source: str,
        replay: bool,
    ) -> None:
        self.interval = market.interval
        self.exchange = market.exchange
        self.include_prepost = market.include_prepost
        self.settle_delay = timedelta(seconds=market.settle_delay_s)
        self.calendar = get_calendar(market.exchange)
        self.client = client
        self.events = events
        self.limiter = limiter
        self.stop = stop
        self.source = source
        self.replay = replay

    def whole_life(
        self, symbol: str, delivered: Mapping[date, float]
    ) -> tuple[dict[date, float], list[CorporateAction]]:
        """Yahoo's split list over the symbol's whole life (one events-only request), with the
        splits delivered before (`delivered`): the basis of every window this poll fetches."""
        now = datetime.now(UTC)
        chart = call_with_retry(
            lambda: self.events.fetch(symbol, now),
            limiter=self.limiter,
            stop=self.stop,
            what=f"{symbol} split and dividend events",
        )
        try:
            actions = chart_actions(chart, symbol, self.source)
        except ValueError as exc:
            raise SourceError(f"{symbol}: cannot parse the chart events: {exc}") from exc
        splits = {**delivered, **splits_by_day(actions)}
        return splits, actions

    def fetch(self, symbol: str, window: Window, splits: dict[date, float]) -> ParsedChart:
        """One window's chart, parsed on `splits` (grown by the window's own split events).

        Replay closes bars by the recording's own time; a window reaching before the default
        calendar's years is placed on a calendar built from its first day.
        """
        fetch = call_with_retry(
            lambda: self.client.fetch(symbol, self.interval, window.start, window.end),
            limiter=self.limiter,
            stop=self.stop,
            what=f"{symbol} {self.interval} chart",
        )
        # History before the default calendar's years gets a calendar reaching back to it.
        start = self.calendar.session_date(window.start)
        calendar = get_calendar(self.exchange, start)
        try:
            parsed = parse_chart(
                fetch,
                calendar,
                source=self.source,
                include_prepost=self.include_prepost,
                settle_delay=self.settle_delay,
                known_splits=splits,
                replay=self.replay,
            )
        except ValueError as exc:  # e.g. an unreadable split event
            raise SourceError(f"{symbol}: cannot parse the chart: {exc}") from exc
        # A split in this window's own events counts for the windows after it, too.
        splits.update(parsed.splits)
        return parsed
