"""Malformed messages made from good ones, for the fuzz tests (seeded: a failure reproduces).

Every kind the proof issue names: truncated JSON, wrong types, numbers out of range (JSON's
`1e999`, non-finite once decoded), huge payloads, unknown schema names, malformed version tags,
bad UTF-8, NUL bytes, plus missing fields, non-JSON bytes and JSON that is not an object. Each
one is invalid by construction (tests/unit/shared/test_malformed.py checks that decoding and
validation reject every one); a well-formed *newer* version of a known schema is never made
here (that pauses a partition: the schema-evolution test's subject).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from shared.schemas import Article, Bar, CorporateAction, DeadLetter, Instrument, MacroObservation
from shared.validation import MAX_TEXT

MODELS = (Bar, Article, CorporateAction, Instrument, MacroObservation, DeadLetter)

KINDS = (
    "truncated",
    "wrong_type",
    "out_of_range",
    "huge",
    "unknown_schema",
    "bad_version",
    "bad_utf8",
    "nul",
    "missing_field",
    "not_json",
    "not_an_object",
)
_WRONG = ([1, 2], {"a": 1}, True, "text", None)


def _fields(document: dict[str, Any], kind: type | tuple[type, ...]) -> list[str]:
    return [
        name
        for name, value in document.items()
        if name != "schema" and isinstance(value, kind) and not isinstance(value, bool)
    ]


def malformed(good: bytes, model: type[msgspec.Struct], kind: str, rng: random.Random) -> bytes:
    """One malformed variant of `good`, a valid JSON message of schema `model`."""
    document: dict[str, Any] = json.loads(good)
    required = [f.name for f in msgspec.structs.fields(model) if f.required]
    maker: dict[str, Callable[[], bytes]] = {
        "truncated": lambda: good[: rng.randrange(1, len(good) - 1)],
        "wrong_type": lambda: _wrong_type(document, rng),
        "out_of_range": lambda: _out_of_range(document, rng, _dated(model)),
        "huge": lambda: _replace_text(
            document, rng, "x" * rng.randrange(MAX_TEXT + 1, 600_000), exclude=("payload",)
        ),
        "unknown_schema": lambda: _dump({**document, "schema": rng.choice(UNKNOWN_SCHEMAS)}),
        "bad_version": lambda: _dump({**document, "schema": _bad_version(document, rng)}),
        "bad_utf8": lambda: _bad_utf8(document, rng),
        "nul": lambda: _replace_text(document, rng, "before\u0000after"),
        "missing_field": lambda: _without(document, rng.choice(required)),
        "not_json": lambda: rng.choice(NOT_JSON),
        "not_an_object": lambda: rng.choice(NOT_OBJECTS),
    }
    return maker[kind]()


UNKNOWN_SCHEMAS = ("market.candle/1", "bars/1", "", "market.bar", "news.artikel/1")
NOT_JSON = (b"", b"\x00\x01\x02", b"{{{", b"not json at all", b"\xff\xfe\xfd", b"{'a': 1}")
NOT_OBJECTS = (b"[]", b"null", b"42", b'"market.bar/1"', b"[{}]", b"true")


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def _wrong_type(document: dict[str, Any], rng: random.Random) -> bytes:
    # A value of another JSON type than the field's: msgspec is strict (no coercion), but an
    # int is a valid float and None a valid optional, so those are never chosen.
    name = rng.choice([n for n in document if n != "schema" and document[n] is not None])
    value = document[name]
    choices = [w for w in _WRONG if w is not None and type(w) is not type(value)]
    if isinstance(value, float):
        choices = [w for w in choices if not isinstance(w, int)]
    if isinstance(value, str):
        choices = [w for w in choices if not isinstance(w, str)]
    return _dump({**document, name: rng.choice(choices)})


def _out_of_range(document: dict[str, Any], rng: random.Random, dated: list[str]) -> bytes:
    """A number JSON can write but no column holds (1e999 decodes to infinity), or a date of
    year 1 or 9999 (for a schema with no numbers)."""
    numbers = _fields(document, (int, float))
    if not numbers:
        when = rng.choice(["0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z", "1899-12-31T00:00:00Z"])
        name = rng.choice(dated)
        return _dump({**document, name: when if "T" in str(document[name]) else when[:10]})
    name = rng.choice(numbers)
    token = rng.choice(["1e999", "-1e999", "1" + "0" * 400, "-9" * 30])
    text = _dump({**document, name: 0}).decode()
    return text.replace(f'"{name}": 0', f'"{name}": {token}', 1).encode()


def _dated(model: type[msgspec.Struct]) -> list[str]:
    return [f.name for f in msgspec.structs.fields(model) if f.type in (datetime, date)]


def _replace_text(
    document: dict[str, Any], rng: random.Random, text: str, exclude: tuple[str, ...] = ()
) -> bytes:
    names = [n for n in _fields(document, str) if n not in exclude]
    return _dump({**document, rng.choice(names): text})


def _bad_version(document: dict[str, Any], rng: random.Random) -> str:
    name = str(document["schema"]).rpartition("/")[0]
    return name + rng.choice(["/", "/x", "/1.5", "/-1", "/v2", "/1/2", "//1", "/0"])


def _bad_utf8(document: dict[str, Any], rng: random.Random) -> bytes:
    marker = "@@BAD@@"
    raw = _replace_text(document, rng, f"a{marker}b")
    return raw.replace(marker.encode(), rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]))


def _without(document: dict[str, Any], name: str) -> bytes:
    return _dump({key: value for key, value in document.items() if key != name})


def good_message(model: type[msgspec.Struct], n: int) -> msgspec.Struct:
    """The n-th distinct valid message of `model` (each stored as its own row)."""
    at = datetime(2024, 10, 2, 13, 30, tzinfo=UTC) + timedelta(minutes=n)
    made: dict[type, Callable[[], msgspec.Struct]] = {
        Bar: lambda: Bar(
            event_id=f"bar-{n}",
            source="test",
            symbol=f"S{n % 50}",
            interval="1m",
            ts=at,
            open=100.0 + n % 7,
            high=101.0 + n % 7,
            low=99.0 + n % 7,
            close=100.5 + n % 7,
            adj_close=None,
            volume=1000 + n,
            fetched_at=at + timedelta(days=1),
        ),
        Article: lambda: Article(
            event_id=f"article-{n}",
            source="test",
            symbol="AAPL",
            id=f"article-{n}",
            published_at=at,
            headline=f"headline {n}",
            summary="summary",
            publisher="wire",
            url=f"https://example.org/{n}",
            category="company",
            sentiment=0.1,
        ),
        CorporateAction: lambda: CorporateAction(
            event_id=f"action-{n}",
            source="test",
            symbol=f"S{n}",
            ts=at,
            kind="dividend",
            amount=0.5,
        ),
        Instrument: lambda: Instrument(
            event_id=f"instrument-{n}", source="test", symbol=f"S{n}", as_of=at, name=f"name {n}"
        ),
        MacroObservation: lambda: MacroObservation(
            event_id=f"obs-{n}",
            source="test",
            series_id="GDP",
            obs_date=date(2000, 1, 1) + timedelta(days=n),
            realtime_start=date(2024, 2, 1),
            value=100.0 + n,
        ),
        DeadLetter: lambda: DeadLetter(
            service="market",
            source="yahoo",
            reason=f"unparsable {n}",
            key=None,
            payload='{"chart": null}',
            created_at=at,
        ),
    }
    return made[model]()
