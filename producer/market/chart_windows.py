"""Which chart windows producer.market asks Yahoo for, per symbol: live, replay or backfill."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from producer.market.windows import Window, backfill_windows, live_windows, replay_windows
from producer.replay.index import ChartRange, ReplayIndex
from producer.yahoo_intervals import fetch_interval
from shared.calendar import ExchangeCalendar
from shared.settings import MarketSettings

logger = logging.getLogger(__name__)


class ChartWindows:
    """Live: from the watermark (or the history days) to now. Replay: the recorded ranges."""

    def __init__(
        self, market: MarketSettings, calendar: ExchangeCalendar, index: ReplayIndex | None
    ) -> None:
        self._market = market
        self._calendar = calendar
        self._index = index
        self._unrecorded: set[str] = set()

    def windows(
        self, symbol: str, watermark: datetime | None, backfill_days: int | None
    ) -> list[Window]:
        interval = self._market.interval
        if self._index is None:
            return live_windows(
                interval,
                watermark=watermark if backfill_days is None else None,
                now=datetime.now(UTC),
                history_days=self._market.history_days if backfill_days is None else backfill_days,
                calendar=self._calendar,
            )
        ranges = self._ranges(symbol)
        if not ranges and symbol not in self._unrecorded:
            self._unrecorded.add(symbol)
            logger.warning(
                "replay: no recorded %s chart for %s (Yahoo granularity %s)%s; skipped",
                interval,
                symbol,
                fetch_interval(interval),
                " with pre/post-market" if self._market.include_prepost else "",
            )
        if backfill_days is not None:
            return backfill_windows(ranges, days=backfill_days)
        return replay_windows(ranges, interval, watermark=watermark, calendar=self._calendar)

    def has_charts(self, symbol: str) -> bool:
        """Whether Yahoo may have bars of `symbol` (replay: whether any are recorded)."""
        return self._index is None or bool(self._ranges(symbol))

    def _ranges(self, symbol: str) -> list[ChartRange]:
        if self._index is None:
            return []
        granularity = fetch_interval(self._market.interval)
        return self._index.chart_ranges(symbol, granularity, self._market.include_prepost)
