"""One poll of producer.market: fetch each symbol's new bars, publish them, advance watermarks."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import msgspec
import psycopg
from confluent_kafka import Producer
from psycopg_pool import ConnectionPool

from producer.api_errors import ApiAuthError
from producer.data_source import build_session
from producer.finnhub_api import build_finnhub
from producer.market.parsing import SERVICE, ParsedChart, fetched_splits, parse_chart
from producer.market.reference import InstrumentSource, parse_actions
from producer.market.windows import Window, live_windows, replay_windows
from producer.poll_loop import RateLimiter, call_with_retry
from producer.publisher import KafkaPublisher
from producer.replay.index import ReplayIndex
from producer.watermarks import Confirmed, DeliveryTracker, WatermarkStore
from producer.yahoo_client import UnknownSymbolError, YahooClient
from producer.yahoo_intervals import fetch_interval
from shared.calendar import get_calendar
from shared.errors import SourceError
from shared.health import Health
from shared.kafka import topics_for
from shared.metrics import DEAD_LETTERS, DROPPED
from shared.schemas import encode
from shared.settings import DataSource, Settings

logger = logging.getLogger(__name__)

# Splits stored from earlier fetches (storage writes market.actions into corporate_actions).
KNOWN_SPLITS = """
SELECT symbol, ts, ratio FROM corporate_actions
WHERE kind = 'split' AND ratio > 0 AND symbol = ANY(%s)
"""
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

    def add(self, parsed: ParsedChart) -> None:
        self.dropped.update(parsed.dropped)
        self.dead_letters += len(parsed.dead_letters)


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
        self.health = health
        self.stop = stop
        self.settle_delay = timedelta(seconds=self.market.settle_delay_s)
        self._watermarks: dict[str, datetime] | None = None
        # Confirmed but not yet stored (Postgres was down): stored with the next poll.
        self._unstored: dict[str, Confirmed] = {}
        self._unknown: set[str] = set()
        self._unrecorded: set[str] = set()
        self._pool = pool
        # Every split seen for a symbol (corporate_actions, then each fetch's events): a window
        # without the split must keep the basis the split set (see parsing.split_basis).
        self._splits: dict[str, dict[date, float]] | None = None

    def key(self, symbol: str) -> str:
        """The producer_state key of one series."""
        return f"{symbol}|{self.market.interval}"

    def poll(self) -> PollReport:
        """Fetch, publish and flush every symbol's new closed bars, then advance the watermarks."""
        report = PollReport()
        watermarks = self._load_watermarks()
        if watermarks is None:
            # Without watermarks everything would be sent again: wait for Postgres.
            report.failed["producer_state"] = "cannot read watermarks"
            return report
        if not self._load_splits():
            # Without the known splits a bar could be published on the wrong basis.
            report.failed["corporate_actions"] = "cannot read known splits"
            return report
        tracker = DeliveryTracker()
        with KafkaPublisher(self.producer) as publisher:
            for symbol in self.market.symbols:
                if self.stop.is_set():
                    break
                if symbol not in self._unknown:
                    self._poll_symbol(symbol, watermarks, publisher, tracker, report)
            # Flush before reading the tracker: every delivery report has run after it.
            report.undelivered = publisher.flush()
        self._advance(watermarks, tracker.confirmed())
        failed = tracker.failed_keys()
        if failed or report.undelivered:
            # Their watermarks stay before the first failed bar: the next poll sends it again.
            self.health.red("kafka", f"delivery failed for {failed or report.undelivered}")
        else:
            self.health.green("kafka")
        for reason, count in report.dropped.items():
            DROPPED.labels(reason).inc(count)
        logger.info(
            "poll: %d published, %d already sent, dropped %s, %d dead letters%s",
            report.published,
            report.skipped,
            dict(report.dropped) or "nothing",
            report.dead_letters,
            f", failed {sorted(report.failed)}" if report.failed else "",
        )
        return report

    def _poll_symbol(
        self,
        symbol: str,
        watermarks: dict[str, datetime],
        publisher: KafkaPublisher,
        tracker: DeliveryTracker,
        report: PollReport,
    ) -> None:
        key = self.key(symbol)
        health_key = f"yahoo {symbol}"
        floor = watermarks.get(key)
        try:
            for window in self._windows(symbol, floor):
                parsed = self._fetch(symbol, window)
                report.add(parsed)
                for dead in parsed.dead_letters:
                    publisher.publish(self.topics.deadletter, dead.source.encode(), encode(dead))
                    DEAD_LETTERS.labels(self.topics.deadletter).inc()
                for bar in parsed.bars:
                    if floor is not None and bar.ts <= floor:
                        report.skipped += 1
                        continue
                    publisher.publish(
                        self.topics.market_bars,
                        bar.symbol.encode(),
                        encode(bar),
                        tracker.callback(key, bar.ts, bar.event_id),
                    )
                    report.published += 1
                    floor = bar.ts  # overlapping windows of one poll never send a bar twice
                self._publish_actions(parsed, watermarks.get(key), publisher, report)
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
        self._publish_instrument(symbol, watermarks, publisher, tracker)

    def _publish_actions(
        self,
        parsed: ParsedChart,
        watermark: datetime | None,
        publisher: KafkaPublisher,
        report: PollReport,
    ) -> None:
        """Splits and dividends of the fetched window, except those of days already sent."""
        for action in parsed.actions:
            if watermark is not None and action.ts.date() <= watermark.date():
                continue
            publisher.publish(self.topics.market_actions, action.symbol.encode(), encode(action))
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

    def _windows(self, symbol: str, watermark: datetime | None) -> list[Window]:
        interval = self.market.interval
        if self.index is None:
            return live_windows(
                interval,
                watermark=watermark,
                now=datetime.now(UTC),
                history_days=self.market.history_days,
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
        return replay_windows(ranges, interval, watermark=watermark, calendar=self.calendar)

    def _fetch(self, symbol: str, window: Window) -> ParsedChart:
        fetch = call_with_retry(
            lambda: self.client.fetch(symbol, self.market.interval, window.start, window.end),
            limiter=self.limiter,
            stop=self.stop,
            what=f"{symbol} {self.market.interval} chart",
        )
        try:
            known = self._splits.setdefault(symbol, {}) if self._splits is not None else {}
            parsed = parse_chart(
                fetch,
                self.calendar,
                source=self.source,
                include_prepost=self.market.include_prepost,
                settle_delay=self.settle_delay,
                known_splits=known,
            )
            known.update(fetched_splits(fetch))
            parsed.actions = parse_actions(fetch, self.source)
            return parsed
        except ValueError as exc:  # e.g. bars outside the exchange calendar's years
            raise SourceError(f"{symbol}: cannot parse the chart: {exc}") from exc

    def _load_splits(self) -> bool:
        if self._splits is None:
            try:
                with self._pool.connection() as conn:
                    rows = conn.execute(KNOWN_SPLITS, (list(self.market.symbols),)).fetchall()
            except psycopg.Error as exc:  # Postgres unreachable: retried next poll
                self.health.red("corporate_actions", f"cannot read known splits: {exc}")
                return False
            self._splits = {}
            for symbol, ts, ratio in rows:
                self._splits.setdefault(symbol, {})[ts.astimezone(UTC).date()] = ratio
            self.health.green("corporate_actions")
        return True

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
