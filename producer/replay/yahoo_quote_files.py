"""Recognise a recorded Yahoo /v7/finance/quote body by its content."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from producer.replay.recorded import RecordedFile

QUOTE = "quote"
QUOTE_PATH = "/v7/finance/quote"


def read_quote(path: Path, body: Any) -> RecordedFile | None:
    """A quote body; `key` lists its symbols comma-separated (one body may answer several)."""
    response = body.get("quoteResponse") if isinstance(body, dict) else None
    results = response.get("result") if isinstance(response, dict) else None
    if not isinstance(results, list) or not results:
        return None
    symbols = [r.get("symbol") for r in results if isinstance(r, dict)]
    if not symbols or not all(isinstance(s, str) for s in symbols):
        return None
    times = [r["regularMarketTime"] for r in results if isinstance(r.get("regularMarketTime"), int)]
    return RecordedFile(
        path,
        "yahoo",
        QUOTE,
        status=200,
        key=",".join(s.upper() for s in symbols),
        recorded_at=datetime.fromtimestamp(max(times), UTC) if times else None,
    )


def quotes_symbol(file: RecordedFile, symbol: str) -> bool:
    return file.endpoint == QUOTE and symbol.upper() in (file.key or "").split(",")
