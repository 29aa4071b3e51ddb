"""producer.market's plan: each symbol's new closed bars, its splits and dividends, its daily
instrument snapshot; or, as a backfill, the bars older than the oldest delivered one."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from confluent_kafka import KafkaError, Message

from producer.api_errors import NotFoundError
from producer.market.clients import MarketClients
from producer.market.parsing import ParsedChart
from producer.plans import Outlet, Plan, Poll, PollReport
from producer.store import OwnState, action_key
from shared.health import Health
from shared.schemas import CorporateAction, encode, event_id
from shared.settings import MarketSettings

logger = logging.getLogger(__name__)

# Which bars of a window are new: `fresh(ts)` for each bar, in time order.
Fresh = Callable[[datetime], bool]


@dataclass
class MarketReport(PollReport):
    """A market poll's report, with what only bars have."""

    unknown_symbols: list[str] = field(default_factory=list)
    actions: int = 0
    # Backfill: the newest bar published per series key (what the recompute waits for).
    backfilled: dict[str, datetime] = field(default_factory=dict)

    def add(self, parsed: ParsedChart) -> None:
        self.dropped.update(parsed.dropped)
        self.dead_letters += len(parsed.rejected)

    def summary(self) -> str:
        return f"{super().summary()}, {self.actions} actions"


class MarketPlan(Plan[MarketReport]):
    """Polls every configured symbol once per poll; `backfill_days` makes each poll a backfill
    of that many days (history extended backwards; replay counts them from the newest
    recorded point)."""

    def __init__(
        self,
        market: MarketSettings,
        clients: MarketClients,
        own: OwnState,
        *,
        backfill_days: int | None = None,
    ) -> None:
        self.market = market
        self.clients = clients
        self.finnhub_gate = clients.finnhub_gate
        self.own = own
        self.backfill_days = backfill_days
        self.what = "poll" if backfill_days is None else f"backfill of {backfill_days} days"
        self._unknown: set[str] = set()

    def new_report(self) -> MarketReport:
        return MarketReport()

    def keys(self) -> Iterable[str]:
        return [s for s in self.market.symbols if s not in self._unknown]

    def series_key(self, symbol: str) -> str:
        """The producer_state key of one series."""
        return f"{symbol}|{self.market.interval}"

    def health_key(self, key: str) -> str:
        return f"yahoo {key}"

    def describe(self, key: str) -> str:
        return "Yahoo"

    def not_found(self, key: str, error: NotFoundError, poll: Poll[MarketReport]) -> bool:
        self._unknown.add(key)
        poll.report.unknown_symbols.append(key)
        logger.warning("unknown symbol %s, skipped from now on (%s)", key, error)
        return False

    def prepare(self, poll: Poll[MarketReport], health: Health) -> bool:
        """The actions this producer delivered (producer_actions) and the oldest delivered bar
        per series (producer_history): its own state, never a table storage writes."""
        try:
            self.own.load(self.market.symbols)
        except psycopg.Error as exc:  # Postgres unreachable: retried next poll
            health.red("producer_actions", f"cannot read the producer's state: {exc}")
            # Without the delivered actions a split would be sent again and again.
            poll.report.failed["producer_actions"] = "cannot read the producer's own state"
            return False
        health.green("producer_actions")
        return True

    def finish(self, poll: Poll[MarketReport], health: Health) -> None:
        """Store the actions and oldest bars whose delivery was confirmed (kept on failure)."""
        try:
            self.own.save()
        except psycopg.Error as exc:  # Postgres unreachable: delivered stays delivered
            health.red("producer_actions", f"cannot store the producer's state: {exc}")

    def poll_key(self, key: str, poll: Poll[MarketReport]) -> None:
        symbol, clients = key, self.clients
        series = self.series_key(symbol)
        backfill = self.backfill_days is not None
        windows = clients.windows.windows(symbol, poll.watermarks.get(series), self.backfill_days)
        # Asked even without a window to fetch: an action whose delivery failed is re-sent.
        listed = windows or clients.windows.has_charts(symbol)
        delivered = self.own.known.splits.get(symbol, {})
        splits, actions = clients.fetcher.whole_life(symbol, delivered) if listed else ({}, [])
        # Every window is fetched before anything is published: a window that fails leaves the
        # series' earlier failed deliveries bounding its watermark. Without a window nothing is
        # sent again, so they keep bounding it.
        charts = [clients.fetcher.fetch(symbol, window, splits) for window in windows]
        if charts:
            poll.outlet.resend(series)
        newest = self._publish_charts(symbol, charts, poll)
        for parsed in charts:
            actions += parsed.actions
        if backfill and newest is not None:
            poll.report.backfilled[series] = newest
        self._publish_actions(actions, poll)
        if not backfill:
            clients.snapshots.publish(symbol, poll.watermarks, poll.outlet)

    def _publish_charts(
        self, symbol: str, charts: list[ParsedChart], poll: Poll[MarketReport]
    ) -> datetime | None:
        """Publish the new bars and dead letters of `charts`; the newest bar published."""
        series, outlet, report = self.series_key(symbol), poll.outlet, poll.report
        fresh = self._new_bars(series, poll)
        newest: datetime | None = None  # overlapping windows of one poll never send a bar twice
        for parsed in charts:
            report.add(parsed)
            for ts, dead in parsed.rejected:
                if not fresh(ts) or (newest is not None and ts <= newest):
                    continue
                dead_id = event_id(self.clients.source, symbol, "deadletter", ts)
                outlet.dead_letter(dead, outlet.track(series, ts, dead_id))
            for bar in parsed.bars:
                if not fresh(bar.ts) or (newest is not None and bar.ts <= newest):
                    report.skipped += 1
                    continue
                outlet.publish(
                    outlet.topics.market_bars,
                    bar.symbol.encode(),
                    encode(bar),
                    outlet.track(series, bar.ts, bar.event_id, self._lower_history(series, bar.ts)),
                )
                report.published += 1
                newest = bar.ts
        return newest

    def _new_bars(self, series: str, poll: Poll[MarketReport]) -> Fresh:
        """Which bars of `series` to publish: newer than the watermark (poll), or older than
        the oldest delivered bar (backfill; the watermark when that is unknown)."""
        if self.backfill_days is None:
            floor = poll.watermarks.get(series)
            return lambda ts: floor is None or ts > floor
        bound = self.own.history.get(series) or poll.watermarks.get(series)
        return lambda ts: bound is None or ts < bound

    def _lower_history(
        self, series: str, ts: datetime
    ) -> Callable[[KafkaError | None, Message], None]:
        """A delivered bar lowers the series' oldest delivered bar."""
        deliveries = self.own.deliveries

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                deliveries.bar(series, ts)

        return on_delivery

    def _publish_actions(self, actions: list[CorporateAction], poll: Poll[MarketReport]) -> None:
        """Every split and dividend Yahoo listed whose delivery is not confirmed yet, tracked:
        a failed delivery is sent again by the next poll (whatever the bars' watermark)."""
        outlet: Outlet = poll.outlet
        sent: set[tuple[str, str, datetime]] = set()
        for action in sorted(actions, key=lambda a: (a.ts, a.kind)):
            found = action_key(action)
            if found in self.own.known.delivered or found in sent:
                continue
            sent.add(found)
            outlet.publish(
                outlet.topics.market_actions,
                action.symbol.encode(),
                encode(action),
                self.own.deliveries.action(action),
            )
            poll.report.actions += 1
