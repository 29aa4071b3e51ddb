"""Schemas: round trips, every known version, newer versions vs malformed messages."""

from __future__ import annotations

from datetime import UTC, date, datetime

import msgspec
import pytest

from shared.errors import SchemaError, UpgradeNeededError
from shared.schemas import (
    KNOWN_VERSIONS,
    Article,
    Bar,
    CorporateAction,
    DeadLetter,
    Instrument,
    MacroObservation,
    dead_letter,
    decode,
    encode,
    event_id,
)

TS = datetime(2024, 10, 2, 13, 30, tzinfo=UTC)


def make_bar(**changes: object) -> Bar:
    bar = Bar(
        event_id=event_id("yahoo", "AAPL", "1m", TS),
        source="yahoo",
        symbol="AAPL",
        interval="1m",
        ts=TS,
        open=225.6999969482422,
        high=226.0,
        low=225.5,
        close=225.75,
        adj_close=None,
        volume=12345,
        split_basis=4.0,
        fetched_at=TS,
    )
    return msgspec.structs.replace(bar, **changes)


def test_bar_round_trip_keeps_every_float_bit_for_bit() -> None:
    bar = make_bar(adj_close=0.1 + 0.2)
    assert decode(encode(bar), Bar) == bar


def test_dead_letter_round_trip() -> None:
    letter = DeadLetter(
        service="producer.market",
        source="yahoo",
        reason="close is null",
        key="AAPL",
        payload='{"close": null}',
        created_at=TS,
    )
    assert decode(encode(letter), DeadLetter) == letter


def test_every_known_version_has_a_model() -> None:
    models = (Bar, DeadLetter, CorporateAction, Instrument, Article, MacroObservation)
    tags = {model.__struct_config__.tag for model in models}
    assert tags == {f"{name}/{version}" for name, version in KNOWN_VERSIONS.items()}


def test_newer_version_of_a_known_schema_is_an_upgrade_not_a_dead_letter() -> None:
    raw = encode(make_bar()).replace(b"market.bar/1", b"market.bar/2")
    with pytest.raises(UpgradeNeededError, match="market.bar/2"):
        decode(raw, Bar)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b'{"schema":"market.bar/1"}', b'{"schema":"other/9","x":1}', None],
)
def test_malformed_messages_are_schema_errors(raw: bytes | None) -> None:
    with pytest.raises(SchemaError) as caught:
        decode(raw, Bar)
    assert not isinstance(caught.value, UpgradeNeededError)


def test_naive_timestamp_is_rejected() -> None:
    raw = encode(make_bar()).replace(b'"2024-10-02T13:30:00Z"', b'"2024-10-02T13:30:00"', 1)
    with pytest.raises(SchemaError, match="time zone"):
        decode(raw, Bar)


def test_event_id_is_deterministic_and_zone_independent() -> None:
    other_zone = TS.astimezone(datetime.now().astimezone().tzinfo)
    assert event_id("yahoo", "AAPL", "1m", TS) == event_id("yahoo", "AAPL", "1m", other_zone)
    assert event_id("yahoo", "AAPL", "1m", TS) != event_id("yahoo", "AAPL", "5m", TS)


def test_dead_letter_keeps_the_raw_data_as_json_nan_and_all() -> None:
    letter = dead_letter(
        "producer.market", "yahoo", "AAPL", "close is NaN", {"close": float("nan")}, TS
    )
    assert (letter.service, letter.source, letter.key) == ("producer.market", "yahoo", "AAPL")
    assert (letter.reason, letter.created_at) == ("close is NaN", TS)
    assert letter.payload == '{"close": NaN}'
    assert decode(encode(letter), DeadLetter) == letter


def test_dead_letter_of_data_json_cannot_hold_keeps_its_repr() -> None:
    letter = dead_letter("producer.news", "finnhub", None, "odd", {"when": date(2024, 1, 2)}, TS)
    assert letter.payload == '{"when": "datetime.date(2024, 1, 2)"}'
