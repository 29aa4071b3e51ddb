"""The daily instrument snapshot of each symbol: when to ask, and whether it is worth a row."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec

from producer.api_errors import ApiAuthError
from producer.api_gate import ApiGate
from producer.market.instruments import InstrumentSource
from producer.plans import Outlet
from producer.poll_loop import RateLimiter, call_with_retry
from shared.errors import SourceError
from shared.schemas import encode

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


def snapshot_key(symbol: str) -> str:
    """The producer_state key of a symbol's snapshots (its watermark is the snapshot time)."""
    return f"{symbol}|instrument"


class DailySnapshots:
    """Publishes a symbol's metadata once a day; a failure costs the snapshot, never the bars."""

    def __init__(
        self,
        instruments: InstrumentSource,
        finnhub_gate: ApiGate,
        *,
        limiter: RateLimiter,
        stop: threading.Event,
    ) -> None:
        self._instruments = instruments
        self._finnhub_gate = finnhub_gate
        self._limiter = limiter
        self._stop = stop

    def publish(self, symbol: str, watermarks: Mapping[str, datetime], outlet: Outlet) -> None:
        key = snapshot_key(symbol)
        now = datetime.now(UTC)
        if key in watermarks and watermarks[key].date() >= now.date():
            return
        try:
            snapshot = call_with_retry(
                lambda: self._instruments.snapshot(symbol, now),
                limiter=self._limiter,
                stop=self._stop,
                what=f"{symbol} instrument metadata",
            )
        except ApiAuthError as exc:
            self._finnhub_gate.close(f"Finnhub refused the API key, not calling it again: {exc}")
            return
        except SourceError as exc:
            logger.warning("%s: no instrument metadata this poll (%s)", symbol, exc)
            return
        fields = msgspec.structs.asdict(snapshot)
        if all(fields[name] is None for name in INSTRUMENT_FIELDS):
            return  # nobody knows this symbol: no row rather than an invented one
        outlet.resend(key)
        outlet.publish(
            outlet.topics.market_instruments,
            symbol.encode(),
            encode(snapshot),
            outlet.track(key, now, snapshot.event_id),
        )
