"""Recognise a recorded Yahoo /v8/finance/chart body by its content."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from producer.replay.recorded import RecordedFile

# Yahoo's chart error codes and the HTTP status that carries them.
_ERROR_STATUS = {"Not Found": 404, "Bad Request": 400, "Unprocessable Entity": 422}


def _utc(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, int | float) else None


def read_chart(path: Path, body: Any) -> RecordedFile | None:
    """A chart body (`{"chart": {"result": …, "error": …}}`), or None for anything else."""
    chart = body.get("chart") if isinstance(body, dict) else None
    if not isinstance(chart, dict) or "result" not in chart or "error" not in chart:
        return None
    error = chart["error"]
    if error:
        code = error.get("code") if isinstance(error, dict) else None
        return RecordedFile(path, "yahoo", "chart", status=_ERROR_STATUS.get(code, 404))
    results = chart["result"]
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        return None
    meta = results[0].get("meta") or {}
    symbol, granularity = meta.get("symbol"), meta.get("dataGranularity")
    if not isinstance(symbol, str) or not isinstance(granularity, str):
        return None
    timestamps = results[0].get("timestamp") or []
    return RecordedFile(
        path,
        "yahoo",
        "chart",
        status=200,
        key=symbol.upper(),
        granularity=granularity,
        first=_utc(min(timestamps)) if timestamps else None,
        last=_utc(max(timestamps)) if timestamps else None,
        recorded_at=_utc(meta.get("regularMarketTime")),
        prepost=isinstance(meta.get("tradingPeriods"), dict),
        range_name=meta.get("range") or None,
    )
