"""Message schemas, one per topic, versioned by their `schema` tag; JSON through msgspec."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
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


M = TypeVar("M", bound=msgspec.Struct)


class _SchemaTag(msgspec.Struct):
    """Just the tag: used to tell a newer schema version from a malformed message."""

    schema: str


KNOWN_VERSIONS: dict[str, int] = {"market.bar": 1, "pipeline.deadletter": 1}

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
    except msgspec.DecodeError as exc:
        _raise_if_newer(raw)
        raise SchemaError(f"not a valid {model.__struct_config__.tag}: {exc}", raw=raw) from None
    if isinstance(message, Bar) and message.ts.tzinfo is None:
        raise SchemaError("bar timestamp has no time zone", raw=raw)
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
