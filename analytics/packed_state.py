"""A series' exact state as stored in analytics_state.packed_state: MessagePack of its document.

Why MessagePack and not the json text it replaces: a float is its 8 IEEE bytes, written and read
back bit for bit with no printing or parsing, and a state is a third smaller (~2.9 kB against
~4.4 kB with the default rules; ~2.5 kB since indicator state version 2 writes lists, not
objects keyed by name), small enough for PostgreSQL to keep it in the row uncompressed
(migration 0013). Compressing and moving the json out of line on every write was the largest
cost of the analytics consumer's transaction.
"""

from __future__ import annotations

from typing import Any

import msgspec

from analytics.alerts.state import AlertState
from analytics.series import SeriesState

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder().decode


def encode_state(state: SeriesState, alerts: AlertState | None = None) -> bytes:
    """The stored form of a series' state and (when given) its alert machines."""
    document = state.to_state()
    if alerts is not None:
        document["alerts"] = alerts.to_state()
    return _pack(document)


def encode_document(document: dict[str, Any]) -> bytes:
    """The stored form of a state document as it is (a recompute keeps stored machines)."""
    return _pack(document)


def encode_values(values: list[float]) -> bytes:
    """A list of floats (a forecaster's stored window): MessagePack, 9 bytes a value."""
    return _pack(values)


def decode_values(packed: bytes) -> list[float]:
    values = _unpack(packed)
    if not isinstance(values, list):
        raise TypeError(f"a stored window is a list, got {type(values).__name__}")
    return values


def state_document(packed: bytes | None, legacy: dict[str, Any] | None) -> dict[str, Any]:
    """The state document of a row: its packed form, or the json `state` column of a row
    written before migration 0013. ValueError (msgspec.DecodeError is one) or TypeError when it
    cannot be read."""
    document = legacy if packed is None else _unpack(packed)
    if not isinstance(document, dict):
        raise TypeError(f"a state document is an object, got {type(document).__name__}")
    return document
