"""What producer.market talks to, built once per process from its settings."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from producer.api_gate import ApiGate
from producer.data_source import build_session
from producer.finnhub_api import build_finnhub
from producer.market.chart_windows import ChartWindows
from producer.market.events import EventsClient
from producer.market.fetcher import SymbolFetcher
from producer.market.instruments import InstrumentSource
from producer.market.snapshots import DailySnapshots
from producer.poll_loop import RateLimiter
from producer.replay.index import ReplayIndex
from producer.yahoo_client import YahooClient
from shared.calendar import get_calendar
from shared.health import Health
from shared.settings import DataSource, Settings


@dataclass(frozen=True)
class MarketClients:
    """Yahoo's chart and events (one rate limit), the windows to ask for, the snapshots."""

    source: str  # "yahoo", or "replay"
    fetcher: SymbolFetcher
    windows: ChartWindows
    snapshots: DailySnapshots
    # Finnhub's profile2 only fills what Yahoo's quote lacks: without a key, bars flow on.
    finnhub_gate: ApiGate


def build_clients(settings: Settings, health: Health, stop: threading.Event) -> MarketClients:
    market = settings.market
    replay = settings.source.data_source is DataSource.REPLAY
    source = "replay" if replay else "yahoo"
    calendar = get_calendar(market.exchange)
    index = ReplayIndex.scan(settings.source.replay_dir) if replay else None
    session = build_session(settings.source, index)
    timeout_s = settings.source.http_timeout_s
    client = YahooClient(
        session, str(calendar.tz), timeout_s=timeout_s, prepost=market.include_prepost
    )
    limiter = RateLimiter(market.requests_per_minute)
    fetcher = SymbolFetcher(
        market,
        client=client,
        events=EventsClient(session, timeout_s=timeout_s),
        limiter=limiter,
        stop=stop,
        source=source,
        replay=replay,
    )
    finnhub, gate = build_finnhub(settings, stop, health, index, feature="Finnhub profile2")
    instruments = InstrumentSource(session, finnhub, gate, source=source, timeout_s=timeout_s)
    return MarketClients(
        source=source,
        fetcher=fetcher,
        windows=ChartWindows(market, calendar, index),
        snapshots=DailySnapshots(instruments, gate, limiter=limiter, stop=stop),
        finnhub_gate=gate,
    )
