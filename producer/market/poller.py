"""One poll of producer.market: fetch each symbol's new bars, publish them, advance watermarks."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import psycopg
from confluent_kafka import KafkaError, Message, Producer
from psycopg_pool import ConnectionPool

from producer.api_errors import ApiAuthError
from producer.data_source import build_session
from producer.finnhub_api import build_finnhub
from producer.market.events import EventsClient
from producer.market.fetcher import SymbolFetcher
from producer.market.parsing import SERVICE, ParsedChart
from producer.market.reference import InstrumentSource
from producer.market.windows import Window, backfill_windows, live_windows, replay_windows
from producer.poll_loop import RateLimiter, call_with_retry
from producer.publisher import KafkaPublisher, PublishStoppedError
from producer.replay.index import ReplayIndex
from producer.store import OwnState, ProducerStore, action_key
from producer.watermarks import Confirmed, DeliveryTracker, WatermarkStore
from producer.yahoo_client import UnknownSymbolError, YahooClient
from producer.yahoo_intervals import fetch_interval
from shared.calendar import get_calendar
from shared.errors import SourceError
from shared.health import Health
from shared.kafka import topics_for
from shared.metrics import DEAD_LETTERS, DROPPED
from shared.schemas import CorporateAction, encode, event_id
from shared.settings import DataSource, Settings

logger = logging.getLogger(__name__)

INSTRUMENT_FIELDS = (
    "name",
    "exchange",
    "currency",
    "industry",
    "market_cap",
    "pe_ratio",
    "high_52w",
    "low_52w",
)


@dataclass
class PollReport:
    """What one poll did; `dropped` counts expected API artefacts by reason."""

    published: int = 0
    skipped: int = 0  # at or below the watermark: sent before
    dropped: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    unknown_symbols: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    undelivered: int = 0
    actions: int = 0
    # Backfill: the newest bar published per series key (what the recompute waits for).
    backfilled: dict[str, datetime] = field(default_factory=dict)

    def add(self, parsed: ParsedChart) -> None:
        self.dropped.update(parsed.dropped)
        self.dead_letters += len(parsed.rejected)


# Which bars of a window are new: `fresh(ts)` for each bar, in time order.
Fresh = Callable[[datetime], bool]


class MarketPoller:
    """Polls every configured symbol once per `poll()`; one instance per process."""

    def __init__(
        self,
        settings: Settings,
        *,
        producer: Producer,
        pool: ConnectionPool,
        health: Health,
        stop: threading.Event,
    ) -> None:
        self.market = settings.market
        self.replay = settings.source.data_source is DataSource.REPLAY
        self.source = "replay" if self.replay else "yahoo"
        self.calendar = get_calendar(self.market.exchange)
        self.index: ReplayIndex | None = None
        if self.replay:
            self.index = ReplayIndex.scan(settings.source.replay_dir)
        session = build_session(settings.source, self.index)
        self.client = YahooClient(
            session,
            str(self.calendar.tz),
            timeout_s=settings.source.http_timeout_s,
            prepost=self.market.include_prepost,
        )
        self.limiter = RateLimiter(self.market.requests_per_minute)
        self.fetcher = SymbolFetcher(
            self.market,
            client=self.client,
            events=EventsClient(session, timeout_s=settings.source.http_timeout_s),
            limiter=self.limiter,
            stop=stop,
            source=self.source,
            replay=self.replay,
        )
        # Finnhub's profile2 only fills what Yahoo's quote lacks: without a key, bars flow on.
        finnhub, self.finnhub_gate = build_finnhub(
            settings, stop, health, self.index, feature="Finnhub profile2"
        )
        self.instruments = InstrumentSource(
            session,
            finnhub,
            self.finnhub_gate,
            source=self.source,
            timeout_s=settings.source.http_timeout_s,
        )
        self.topics = topics_for(settings.kafka)
        self.producer = producer
        self.store = WatermarkStore(pool, SERVICE)
        self.own = OwnState(ProducerStore(pool, SERVICE))
        self.health = health
        self.stop = stop
        self._watermarks: dict[str, datetime] | None = None
        # Confirmed but not yet stored (Postgres was down): stored with the next poll.
        self._unstored: dict[str, Confirmed] = {}
        self._unknown: set[str] = set()
        self._unrecorded: set[str] = set()

    def key(self, symbol: str) -> str:
        """The producer_state key of one series."""
        return f"{symbol}|{self.market.interval}"

    def poll(self) -> PollReport:
        """Fetch, publish and flush every symbol's new closed bars, then advance the watermarks."""
        return self._run(backfill_days=None)

    def backfill(self, days: int) -> PollReport:
        """Publish every symbol's closed bars of the last `days` days that are older than its
        oldest delivered bar (history extended backwards); newer ones are the polls' job.

        Replay counts the days back from the symbol's newest recorded point (its "now").
        """
        return self._run(backfill_days=days)

    def _run(self, *, backfill_days: int | None) -> PollReport:
        report = PollReport()
        watermarks = self._load_watermarks()
        if watermarks is None:
            # Without watermarks everything would be sent again: wait for Postgres.
            report.failed["producer_state"] = "cannot read watermarks"
            return report
        if not self._load_own_state():
            # Without the delivered actions a split would be sent again and again.
            report.failed["producer_actions"] = "cannot read the producer's own state"
            return report
        tracker = DeliveryTracker()
        with KafkaPublisher(self.producer, stop=self.stop) as publisher:
            for symbol in self.market.symbols:
                if self.stop.is_set():
                    break
                if symbol not in self._unknown:
                    try:
                        self._poll_symbol(
                            symbol, watermarks, publisher, tracker, report, backfill_days
                        )
                    except PublishStoppedError:
                        break  # stopped while the local queue was full: what was sent counts
            # Flush before reading the tracker: every delivery report has run after it.
            report.undelivered = publisher.flush()
        self._advance(watermarks, tracker.confirmed())
        self._save_own_state()
        failed = tracker.failed_keys()
        if failed or report.undelivered:
            # Their watermarks stay before the first failed bar: the next poll sends it again.
            self.health.red("kafka", f"delivery failed for {failed or report.undelivered}")
        else:
            self.health.green("kafka")
        for reason, count in report.dropped.items():
            DROPPED.labels(reason).inc(count)
        logger.info(
            "%s: %d published, %d already sent, %d actions, dropped %s, %d dead letters%s",
            "poll" if backfill_days is None else f"backfill of {backfill_days} days",
            report.published,
            report.skipped,
            report.actions,
            dict(report.dropped) or "nothing",
            report.dead_letters,
            f", failed {sorted(report.failed)}" if report.failed else "",
        )
        return report

    def _fresh(self, key: str, watermarks: dict[str, datetime], backfill: bool) -> Fresh:
        """Which bars of series `key` to publish: newer than the watermark (poll), or older
        than the oldest delivered bar (backfill; the watermark when that is unknown)."""
        if not backfill:
            floor = watermarks.get(key)
            return lambda ts: floor is None or ts > floor
        bound = self.own.history.get(key) or watermarks.get(key)
        return lambda ts: bound is None or ts < bound

    def _poll_symbol(
        self,
        symbol: str,
        watermarks: dict[str, datetime],
        publisher: KafkaPublisher,
        tracker: DeliveryTracker,
        report: PollReport,
        backfill_days: int | None,
    ) -> None:
        key = self.key(symbol)
        health_key = f"yahoo {symbol}"
        fresh = self._fresh(key, watermarks, backfill_days is not None)
        newest: datetime | None = None  # overlapping windows of one poll never send a bar twice
        try:
            windows = self._windows(symbol, watermarks.get(key), backfill_days)
            # Asked even without a window to fetch: an action whose delivery failed is re-sent.
            listed = windows or self._has_charts(symbol)
            delivered = self.own.known.splits.get(symbol, {})
            splits, actions = self.fetcher.whole_life(symbol, delivered) if listed else ({}, [])
            for window in windows:
                parsed = self.fetcher.fetch(symbol, window, splits)
                report.add(parsed)
                actions += parsed.actions
                for ts, dead in parsed.rejected:
                    if not fresh(ts) or (newest is not None and ts <= newest):
                        continue
                    dead_id = event_id(self.source, symbol, "deadletter", ts)
                    publisher.publish(
                        self.topics.deadletter,
                        dead.source.encode(),
                        encode(dead),
                        tracker.callback(key, ts, dead_id),
                    )
                    DEAD_LETTERS.labels(self.topics.deadletter).inc()
                for bar in parsed.bars:
                    if not fresh(bar.ts) or (newest is not None and bar.ts <= newest):
                        report.skipped += 1
                        continue
                    publisher.publish(
                        self.topics.market_bars,
                        bar.symbol.encode(),
                        encode(bar),
                        self._bar_callback(tracker, key, bar.ts, bar.event_id),
                    )
                    report.published += 1
                    newest = bar.ts
            if backfill_days is not None and newest is not None:
                report.backfilled[key] = newest
            self._publish_actions(actions, publisher, report)
        except UnknownSymbolError as exc:
            self._unknown.add(symbol)
            report.unknown_symbols.append(symbol)
            logger.warning("unknown symbol %s, skipped from now on (%s)", symbol, exc)
            return
        except SourceError as exc:  # retries exhausted, or a request Yahoo refuses
            if self.stop.is_set():
                return  # interrupted while backing off: not a source failure
            report.failed[symbol] = str(exc)
            # Live failures publish nothing more for this symbol and never fall back to recordings.
            self.health.red(health_key, f"Yahoo: {exc}")
            return
        self.health.green(health_key)
        if backfill_days is None:
            self._publish_instrument(symbol, watermarks, publisher, tracker)

    def _bar_callback(
        self, tracker: DeliveryTracker, key: str, ts: datetime, bar_id: str
    ) -> Callable[[KafkaError | None, Message], None]:
        """The watermark's callback, which also lowers the series' oldest delivered bar."""
        advance = tracker.callback(key, ts, bar_id)
        deliveries = self.own.deliveries

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            advance(error, message)
            if error is None:
                deliveries.bar(key, ts)

        return on_delivery

    def _publish_actions(
        self, actions: list[CorporateAction], publisher: KafkaPublisher, report: PollReport
    ) -> None:
        """Every split and dividend Yahoo listed whose delivery is not confirmed yet, tracked:
        a failed delivery is sent again by the next poll (whatever the bars' watermark)."""
        sent: set[tuple[str, str, datetime]] = set()
        for action in sorted(actions, key=lambda a: (a.ts, a.kind)):
            found = action_key(action)
            if found in self.own.known.delivered or found in sent:
                continue
            sent.add(found)
            publisher.publish(
                self.topics.market_actions,
                action.symbol.encode(),
                encode(action),
                self.own.deliveries.action(action),
            )
            report.actions += 1

    def _publish_instrument(
        self,
        symbol: str,
        watermarks: dict[str, datetime],
        publisher: KafkaPublisher,
        tracker: DeliveryTracker,
    ) -> None:
        """Once a day per symbol: the metadata snapshot (its watermark is the snapshot time)."""
        key = f"{symbol}|instrument"
        now = datetime.now(UTC)
        if key in watermarks and watermarks[key].date() >= now.date():
            return
        try:
            snapshot = call_with_retry(
                lambda: self.instruments.snapshot(symbol, now),
                limiter=self.limiter,
                stop=self.stop,
                what=f"{symbol} instrument metadata",
            )
        except ApiAuthError as exc:
            self.finnhub_gate.close(f"Finnhub refused the API key, not calling it again: {exc}")
            return
        except SourceError as exc:
            logger.warning("%s: no instrument metadata this poll (%s)", symbol, exc)
            return
        fields = msgspec.structs.asdict(snapshot)
        if all(fields[name] is None for name in INSTRUMENT_FIELDS):
            return  # nobody knows this symbol: no row rather than an invented one
        publisher.publish(
            self.topics.market_instruments,
            symbol.encode(),
            encode(snapshot),
            tracker.callback(key, now, snapshot.event_id),
        )

    def _windows(
        self, symbol: str, watermark: datetime | None, backfill_days: int | None
    ) -> list[Window]:
        interval = self.market.interval
        if self.index is None:
            return live_windows(
                interval,
                watermark=watermark if backfill_days is None else None,
                now=datetime.now(UTC),
                history_days=self.market.history_days if backfill_days is None else backfill_days,
                calendar=self.calendar,
            )
        granularity = fetch_interval(interval)
        ranges = self.index.chart_ranges(symbol, granularity, self.market.include_prepost)
        if not ranges and symbol not in self._unrecorded:
            self._unrecorded.add(symbol)
            logger.warning(
                "replay: no recorded %s chart for %s (Yahoo granularity %s)%s; skipped",
                interval,
                symbol,
                granularity,
                " with pre/post-market" if self.market.include_prepost else "",
            )
        if backfill_days is not None:
            return backfill_windows(ranges, days=backfill_days)
        return replay_windows(ranges, interval, watermark=watermark, calendar=self.calendar)

    def _has_charts(self, symbol: str) -> bool:
        """Whether Yahoo may have bars of `symbol` (replay: whether any are recorded)."""
        if self.index is None:
            return True
        granularity = fetch_interval(self.market.interval)
        return bool(self.index.chart_ranges(symbol, granularity, self.market.include_prepost))

    def _load_own_state(self) -> bool:
        """The actions this producer delivered (producer_actions) and the oldest delivered bar
        per series (producer_history): its own state, never a table storage writes."""
        try:
            self.own.load(self.market.symbols)
        except psycopg.Error as exc:  # Postgres unreachable: retried next poll
            self.health.red("producer_actions", f"cannot read the producer's state: {exc}")
            return False
        self.health.green("producer_actions")
        return True

    def _save_own_state(self) -> None:
        """Store the actions and oldest bars whose delivery was confirmed (kept on failure)."""
        try:
            self.own.save()
        except psycopg.Error as exc:  # Postgres unreachable: delivered stays delivered
            self.health.red("producer_actions", f"cannot store the producer's state: {exc}")

    def _load_watermarks(self) -> dict[str, datetime] | None:
        if self._watermarks is None:
            try:
                self._watermarks = self.store.load()
            except psycopg.Error as exc:  # Postgres unreachable: retried next poll
                self.health.red("producer_state", f"cannot read watermarks: {exc}")
                return None
            self.health.green("producer_state")
        return self._watermarks

    def _advance(self, watermarks: dict[str, datetime], confirmed: dict[str, Confirmed]) -> None:
        """Store confirmed watermarks (GREATEST in SQL); keep them for the next poll on failure."""
        for key, mark in confirmed.items():
            watermarks[key] = max(mark.ts, watermarks.get(key, mark.ts))
            held = self._unstored.get(key)
            self._unstored[key] = mark if held is None or mark.ts >= held.ts else held
        try:
            self.store.advance(self._unstored)
        except psycopg.Error as exc:  # Postgres unreachable: delivered bars stay delivered
            self.health.red("producer_state", f"cannot store watermarks: {exc}")
            return
        self._unstored.clear()
        self.health.green("producer_state")
