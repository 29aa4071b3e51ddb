"""Message schemas, one per topic, versioned by their `schema` tag; JSON through msgspec."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import TypeVar

import msgspec

from shared.errors import SchemaError, UpgradeNeededError


class Bar(msgspec.Struct, frozen=True, tag_field="schema", tag="market.bar/1", kw_only=True):
    """One closed OHLCV bar as Yahoo delivered it (`auto_adjust=False`).

    `ts` is the bar's open time (intraday) or its session date at 00:00 UTC (daily bars).
    `split_basis` is the cumulative split factor the prices are expressed in when fetched.
    """

    event_id: str
    source: str
    symbol: str
    interval: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    adj_close: float | None
    volume: int
    split_basis: float = 1.0
    fetched_at: datetime


class DeadLetter(
    msgspec.Struct, frozen=True, tag_field="schema", tag="pipeline.deadletter/1", kw_only=True
):
    """Raw API data a producer could not parse, with the reason."""

    service: str
    source: str
    reason: str
    key: str | None
    payload: str
    created_at: datetime


def dead_letter(
    service: str, source: str, key: str | None, reason: str, raw: object, at: datetime
) -> DeadLetter:
    """The one way a producer turns raw API data it could not parse into a dead letter.

    `raw` is kept as JSON, NaN included (a chart's missing values), and anything JSON cannot
    hold as its repr: the dead letter is never lost to its own payload.
    """
    return DeadLetter(
        service=service,
        source=source,
        reason=reason,
        key=key,
        payload=json.dumps(raw, allow_nan=True, default=repr),
        created_at=at,
    )


class CorporateAction(
    msgspec.Struct, frozen=True, tag_field="schema", tag="market.action/1", kw_only=True
):
    """One split (`ratio` new shares per old share) or dividend (`amount` per share)."""

    event_id: str
    source: str
    symbol: str
    ts: datetime
    kind: str  # "split" | "dividend"
    ratio: float | None = None
    amount: float | None = None


class Instrument(
    msgspec.Struct, frozen=True, tag_field="schema", tag="market.instrument/1", kw_only=True
):
    """A daily metadata snapshot of one symbol; a field no provider gives is None."""

    event_id: str
    source: str
    symbol: str
    as_of: datetime
    name: str | None = None
    exchange: str | None = None
    currency: str | None = None
    sector: str | None = None
    industry: str | None = None
    market_cap: float | None = None
    pe_ratio: float | None = None
    dividend_yield: float | None = None
    high_52w: float | None = None
    low_52w: float | None = None


class Article(msgspec.Struct, frozen=True, tag_field="schema", tag="news.article/1", kw_only=True):
    """One news article for one symbol (`_general` for market news); `id` identifies it."""

    event_id: str
    source: str
    symbol: str
    id: str
    published_at: datetime
    headline: str
    summary: str | None
    publisher: str | None
    url: str | None
    category: str | None
    sentiment: float


class MacroSeries(msgspec.Struct, frozen=True, kw_only=True):
    """A FRED series' metadata, carried inside each observation message."""

    title: str | None = None
    units: str | None = None
    frequency: str | None = None
    seasonal_adjustment: str | None = None
    last_updated: datetime | None = None


class MacroObservation(
    msgspec.Struct, frozen=True, tag_field="schema", tag="macro.observation/1", kw_only=True
):
    """One vintage of one observation; `value` None is FRED's "." (missing, never dropped)."""

    event_id: str
    source: str
    series_id: str
    obs_date: date
    realtime_start: date
    value: float | None
    series: MacroSeries | None = None


M = TypeVar("M", bound=msgspec.Struct)


class _SchemaTag(msgspec.Struct):
    """Just the tag: used to tell a newer schema version from a malformed message."""

    schema: str


KNOWN_VERSIONS: dict[str, int] = {
    "market.bar": 1,
    "market.action": 1,
    "market.instrument": 1,
    "news.article": 1,
    "macro.observation": 1,
    "pipeline.deadletter": 1,
}

_encoder = msgspec.json.Encoder()
_tag_decoder = msgspec.json.Decoder(_SchemaTag)
_decoders: dict[type, msgspec.json.Decoder] = {}


def encode(message: msgspec.Struct) -> bytes:
    """Serialize a schema message to JSON bytes."""
    return _encoder.encode(message)


def decode(raw: bytes | None, model: type[M]) -> M:
    """Decode `raw` into `model`.

    Raises UpgradeNeededError for a well-formed message of a newer version of a known schema,
    SchemaError for anything else that is not a valid `model`.
    """
    if raw is None:
        raise SchemaError("empty message (null value)", raw=raw)
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders[model] = msgspec.json.Decoder(model)
    try:
        message = decoder.decode(raw)
    except UnicodeDecodeError as exc:  # msgspec's error for invalid UTF-8 inside a string
        raise SchemaError(f"not a valid {model.__struct_config__.tag}: {exc}", raw=raw) from None
    except msgspec.DecodeError as exc:
        _raise_if_newer(raw)
        raise SchemaError(f"not a valid {model.__struct_config__.tag}: {exc}", raw=raw) from None
    stamp = getattr(message, "ts", None) or getattr(message, "published_at", None)
    if isinstance(stamp, datetime) and stamp.tzinfo is None:
        raise SchemaError("timestamp has no time zone", raw=raw)
    return message


def _raise_if_newer(raw: bytes) -> None:
    try:
        tag = _tag_decoder.decode(raw).schema
    except msgspec.DecodeError:
        return
    name, _, version = tag.rpartition("/")
    known = KNOWN_VERSIONS.get(name)
    if known is not None and version.isdigit() and int(version) > known:
        raise UpgradeNeededError(f"schema {tag} is newer than this consumer knows ({name}/{known})")


def event_id(source: str, key: str, interval: str, ts: datetime) -> str:
    """Deterministic id of one event: the same bar always gets the same id."""
    stamp = ts.astimezone(UTC).isoformat()
    digest = hashlib.sha256(f"{source}|{key}|{interval}|{stamp}".encode()).hexdigest()
    return digest[:32]
