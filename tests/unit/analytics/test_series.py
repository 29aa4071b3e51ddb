"""SeriesState: splits read off the bars' basis, exact state through its stored JSON text."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

from analytics.indicators import IndicatorParams
from analytics.series import SeriesState
from analytics.store import encode_state

START = datetime(2024, 1, 2, tzinfo=UTC)


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


def test_restored_state_continues_bit_for_bit_through_the_stored_json_text() -> None:
    closes = _closes(200)
    whole = SeriesState.new(IndicatorParams(), 15.87)
    expected = _feed(whole, closes, 1.0)
    first = SeriesState.new(IndicatorParams(), 15.87)
    _feed(first, closes[:77], 1.0)
    # What analytics_state holds (json keeps the text verbatim) and what psycopg reads back.
    restored = SeriesState.from_state(json.loads(encode_state(first)), first.last_ts)
    assert restored.last_ts == START + timedelta(days=76)
    assert _feed(restored, closes[77:], 1.0, first=77) == expected[77:]


def test_a_new_basis_rescales_the_state_like_feeding_adjusted_prices() -> None:
    closes = _closes(120)
    ratio = 4.0
    live = SeriesState.new(IndicatorParams(), 15.87)
    # Before the split prices are quoted on basis 1 (4x today's), after it on basis 4.
    _feed(live, [c * ratio for c in closes[:80]], 1.0)
    after_live = _feed(live, closes[80:], ratio, first=80)
    adjusted = SeriesState.new(IndicatorParams(), 15.87)
    after_adjusted = _feed(adjusted, closes, ratio)[80:]
    assert live.split_basis == ratio
    for ours, reference in zip(after_live, after_adjusted, strict=True):
        for a, b in zip(
            (ours.sma_slow, ours.ema_fast, ours.rsi, ours.macd, ours.bb_upper, ours.volatility),
            (
                reference.sma_slow,
                reference.ema_fast,
                reference.rsi,
                reference.macd,
                reference.bb_upper,
                reference.volatility,
            ),
            strict=True,
        ):
            assert a is not None and b is not None
            assert abs(a - b) <= 1e-9 * max(abs(b), 100.0)


def test_the_first_bar_sets_the_basis_without_rescaling() -> None:
    state = SeriesState.new(IndicatorParams(), 15.87)
    state.feed(START, 50.0, 4.0)
    assert state.split_basis == 4.0 and state.last_ts == START
