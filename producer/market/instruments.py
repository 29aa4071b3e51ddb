"""Daily instrument snapshots: Yahoo's v7 quote, Finnhub's profile2 for what it lacks."""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

from yfinance.data import YfData

from producer.api_errors import NotFoundError, error_for_status
from producer.api_gate import ApiGate
from producer.finnhub_api import FinnhubApi
from shared.errors import RetryableError, SourceError
from shared.redaction import describe_error
from shared.schemas import Instrument, event_id

logger = logging.getLogger(__name__)

QUOTE_URL = "https://query2.finance.yahoo.com/v7/finance/quote"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class InstrumentSource:
    """One symbol's metadata: Yahoo's v7 quote first, Finnhub's profile2 for what Yahoo lacks."""

    def __init__(
        self, session: Any, finnhub: FinnhubApi, gate: ApiGate, *, source: str, timeout_s: float
    ) -> None:
        self._session = session
        self._finnhub = finnhub
        self._gate = gate
        self._source = source
        self._timeout_s = timeout_s

    def _quote(self, symbol: str) -> dict[str, Any]:
        # YfData handles Yahoo's cookie + crumb, as yfinance's own quote calls do.
        data = YfData(session=self._session)
        try:
            body = data.get_raw_json(QUOTE_URL, params={"symbols": symbol}, timeout=self._timeout_s)
        except Exception as exc:  # yfinance raises requests' and its own errors alike
            status = getattr(getattr(exc, "response", None), "status_code", None)
            error = error_for_status(status, f"{symbol} quote") if status else None
            if isinstance(error, NotFoundError):
                return {}
            if isinstance(error, RetryableError):
                raise error from None
            # Not ApiAuthError for a Yahoo 401/403: that would close Finnhub's gate.
            raise SourceError(f"{symbol} quote: {describe_error(exc)}") from None
        results = (body.get("quoteResponse") or {}).get("result") or []
        return next((r for r in results if r.get("symbol", "").upper() == symbol), {})

    def _profile(self, symbol: str) -> dict[str, Any]:
        if not self._gate.open:
            return {}
        try:
            return self._finnhub.profile2(symbol) or {}
        except NotFoundError:
            return {}

    def snapshot(self, symbol: str, as_of: datetime) -> Instrument:
        """Nothing is invented: a field neither provider gives stays None."""
        quote = self._quote(symbol)
        # Yahoo's quote has no sector or industry: Finnhub's finnhubIndustry fills industry.
        profile = self._profile(symbol)
        yield_pct = _number(quote.get("dividendYield"))  # v7 gives percent (0.41 = 0.41 %)
        finnhub_cap = _number(profile.get("marketCapitalization"))  # USD millions
        return Instrument(
            event_id=event_id(self._source, symbol, "instrument", as_of),
            source=self._source,
            symbol=symbol,
            as_of=as_of,
            name=quote.get("longName") or quote.get("shortName") or profile.get("name"),
            exchange=quote.get("fullExchangeName") or profile.get("exchange"),
            currency=quote.get("currency") or profile.get("currency"),
            sector=None,
            industry=profile.get("finnhubIndustry") or None,
            market_cap=_number(quote.get("marketCap"))
            or (finnhub_cap * 1e6 if finnhub_cap is not None else None),
            pe_ratio=_number(quote.get("trailingPE")),
            dividend_yield=yield_pct / 100 if yield_pct is not None else None,
            high_52w=_number(quote.get("fiftyTwoWeekHigh")),
            low_52w=_number(quote.get("fiftyTwoWeekLow")),
        )
