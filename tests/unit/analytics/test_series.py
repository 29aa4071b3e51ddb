"""SeriesState: splits read off the bars' basis, exact state through its stored forms."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from analytics.indicators import IndicatorParams, IndicatorValues
from analytics.packed_state import encode_state, state_document
from analytics.series import SeriesState

START = datetime(2024, 1, 2, tzinfo=UTC)
# Series states as the code of f085667 saved them (indicator state version 1, objects keyed by
# name), written by it from _closes(200): what analytics_state rows hold until their next save.
VERSION_1_STATES = Path(__file__).parent / "data" / "series_state_v1.json"


def _closes(count: int, seed: int = 3) -> list[float]:
    rng = random.Random(seed)  # noqa: S311 - reproducible prices
    price, out = 100.0, []
    for _ in range(count):
        price *= math.exp(rng.gauss(0.0, 0.02))
        out.append(price)
    return out


def _feed(state: SeriesState, closes: list[float], basis: float, first: int = 0) -> list:
    return [
        state.feed(START + timedelta(days=first + i), close, basis)
        for i, close in enumerate(closes)
    ]


def test_restored_state_continues_bit_for_bit_through_its_stored_forms() -> None:
    closes = _closes(200)
    whole = SeriesState.new(IndicatorParams(), 15.87)
    expected = _feed(whole, closes, 1.0)
    first = SeriesState.new(IndicatorParams(), 15.87)
    _feed(first, closes[:77], 1.0)
    # What analytics_state holds: packed_state, or the json text of a row written before
    # migration 0013 (json keeps the text verbatim; psycopg reads it back with json.loads).
    packed = encode_state(first)
    legacy = json.loads(msgspec.json.encode(first.to_state()))
    for document in (state_document(packed, None), state_document(None, legacy)):
        restored = SeriesState.from_state(document, first.last_ts)
        assert restored.last_ts == START + timedelta(days=76)
        assert _feed(restored, closes[77:], 1.0, first=77) == expected[77:]


def test_a_state_saved_as_version_1_continues_bit_for_bit_and_is_saved_as_version_2() -> None:
    closes = _closes(200)
    cases = json.loads(VERSION_1_STATES.read_text())["cases"]
    assert {case["document"]["indicators"]["version"] for case in cases} == {1}
    # Both shapes of the set: parts shared (default periods) and parts of their own.
    assert {"sma_fast" in case["document"]["indicators"] for case in cases} == {True, False}
    for case in cases:
        cut, document = case["cut"], case["document"]
        params = IndicatorParams(**document["indicators"]["params"])
        expected = _feed(SeriesState.new(params, 15.87), closes, 1.0)
        packed = msgspec.msgpack.encode(document)  # as analytics_state holds it
        restored = SeriesState.from_state(state_document(packed, None), START + timedelta(cut - 1))
        assert restored.to_state()["indicators"][0] == 2
        assert len(encode_state(restored)) < 0.8 * len(packed)  # the same state, smaller
        assert _feed(restored, closes[cut:], 1.0, first=cut) == expected[cut:], cut


def test_an_indicator_state_of_an_unknown_version_is_refused() -> None:
    state = SeriesState.new(IndicatorParams(), 15.87)
    _feed(state, _closes(30), 1.0)
    document = state.to_state()
    for version in (3, 0, None):
        document["indicators"][0] = version
        with pytest.raises(ValueError, match="unknown indicator state version"):
            SeriesState.from_state(document, START)
    with pytest.raises(ValueError, match="unknown indicator state version"):
        SeriesState.from_state({"indicators": {"version": 2}, "split_basis": 1.0}, START)


def test_a_packed_state_that_is_not_a_document_cannot_be_read() -> None:
    with pytest.raises(ValueError):
        state_document(b"\xc1", None)  # a byte MessagePack never uses
    with pytest.raises(TypeError):
        state_document(msgspec.msgpack.encode([1, 2]), None)


# Values in price units; RSI and volatility are scale-free.
SCALE_FREE = ("rsi", "volatility")


def _assert_close(ours: IndicatorValues, reference: IndicatorValues, close: float) -> None:
    """Within the README's bound: |a - b| <= 1e-9 * max(|b|, close), None (warm-up) alike.

    Not bit for bit: a rescale multiplies the state's sums once by 1/ratio, the reference sums
    closes each multiplied by it; with a ratio that is not a power of two (3, 1.5) each product
    rounds, so the two differ in the last digits."""
    for field, a, b in zip(IndicatorValues._fields, ours, reference, strict=True):
        if a is None or b is None:
            assert a is None and b is None, f"{field}: {a} vs {b}"
        else:
            assert abs(a - b) <= 1e-9 * max(abs(b), close), f"{field}: {a} vs {b}"


@pytest.mark.parametrize("ratio", [4.0, 3.0, 1.5], ids=["4:1", "3:1", "3:2"])
def test_a_new_basis_rescales_the_state_like_feeding_adjusted_prices(ratio: float) -> None:
    closes = _closes(120)
    live = SeriesState.new(IndicatorParams(), 15.87)
    # Before the split prices are quoted on basis 1 (ratio x today's), after it on basis ratio.
    _feed(live, [c * ratio for c in closes[:80]], 1.0)
    after_live = _feed(live, closes[80:], ratio, first=80)
    adjusted = SeriesState.new(IndicatorParams(), 15.87)
    after_adjusted = _feed(adjusted, closes, ratio)[80:]
    assert live.split_basis == ratio
    for ours, reference, close in zip(after_live, after_adjusted, closes[80:], strict=True):
        assert None not in ours
        _assert_close(ours, reference, close)


def test_a_3_for_1_then_a_3_for_2_split_continue_like_the_adjusted_closes_from_the_start() -> None:
    """Bars quoted on basis 1, then 3 (3:1), then 4.5 (3:2): the live state, rescaled at each new
    basis, gives the indicators a fresh state computes from the start on the closes
    price_bars_adjusted would give (close * split_basis / newest basis)."""
    underlying = _closes(200, seed=5)  # on the newest basis
    # The second split falls inside the 50-bar window that still holds basis-1 closes.
    bases = [1.0] * 110 + [3.0] * 30 + [4.5] * 60
    quoted = [c * 4.5 / basis for c, basis in zip(underlying, bases, strict=True)]
    live = SeriesState.new(IndicatorParams(), 15.87)
    ours = [
        live.feed(START + timedelta(days=i), close, basis)
        for i, (close, basis) in enumerate(zip(quoted, bases, strict=True))
    ]
    adjusted_closes = [close * (basis / 4.5) for close, basis in zip(quoted, bases, strict=True)]
    adjusted = SeriesState.new(IndicatorParams(), 15.87)
    reference = _feed(adjusted, adjusted_closes, 4.5)
    assert live.split_basis == 4.5
    for i in range(len(quoted)):
        # Rows written before a split stay on their basis: bring them onto the newest one.
        factor = bases[i] / 4.5
        on_newest = IndicatorValues(
            *(
                v if v is None or field in SCALE_FREE else v * factor
                for field, v in zip(IndicatorValues._fields, ours[i], strict=True)
            )
        )
        _assert_close(on_newest, reference[i], adjusted_closes[i])
    assert all(v is not None for v in ours[-1])
    # Not vacuous: without the rescales the 50-bar SMA after the 3:2 split would mix bases.
    assert abs(ours[140].sma_slow - adjusted_closes[140]) < 0.2 * adjusted_closes[140]


def test_the_first_bar_sets_the_basis_without_rescaling() -> None:
    state = SeriesState.new(IndicatorParams(), 15.87)
    state.feed(START, 50.0, 4.0)
    assert state.split_basis == 4.0 and state.last_ts == START
