"""Property tests: one-at-a-time equals batch, constant series, gaps, huge values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.indicators import RSI, SMA, Bollinger, IndicatorParams, IndicatorSet, Volatility

prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
series = st.lists(prices, min_size=1, max_size=120)


@given(series, st.integers(min_value=1, max_value=60))
@settings(max_examples=60, deadline=None)
def test_one_at_a_time_equals_batch(closes: list[float], cut: int) -> None:
    """Two sets fed the same closes in different chunks give identical values."""
    whole = IndicatorSet(IndicatorParams(), 1.0)
    chunked = IndicatorSet(IndicatorParams(), 1.0)
    batch = [whole.update(c) for c in closes]
    one = [chunked.update(c) for c in closes[:cut]]
    one += [chunked.update(c) for c in closes[cut:]]
    assert one == batch


@given(series)
@settings(max_examples=60, deadline=None)
def test_sma_equals_talib_batch(closes: list[float]) -> None:
    sma = SMA(5)
    ours = [sma.update(c) for c in closes]
    theirs = talib.SMA(np.asarray(closes), 5)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if i >= 4:
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9 * closes[i])


@given(prices, st.integers(min_value=60, max_value=120))
@settings(max_examples=40, deadline=None)
def test_constant_series(price: float, count: int) -> None:
    indicators = IndicatorSet(IndicatorParams(), 15.9)
    for _ in range(count):
        values = indicators.update(price)
    assert values.rsi == 50.0
    assert values.bb_upper == values.bb_lower
    assert values.volatility == 0.0
    assert values.macd == pytest.approx(0.0, abs=1e-12 * price)


@given(series, st.sampled_from([math.nan, math.inf, -math.inf]))
@settings(max_examples=30, deadline=None)
def test_gaps_are_rejected(closes: list[float], gap: float) -> None:
    for indicator in (SMA(3), RSI(3), Bollinger(3, 2.0), Volatility(3)):
        for c in closes:
            indicator.update(c)
        with pytest.raises(ValueError):
            indicator.update(gap)


@given(st.lists(st.floats(min_value=1e12, max_value=1e15), min_size=60, max_size=100))
@settings(max_examples=30, deadline=None)
def test_huge_values_stay_finite_and_bounded(closes: list[float]) -> None:
    indicators = IndicatorSet(IndicatorParams(), 1.0)
    for c in closes:
        values = indicators.update(c)
    assert values.rsi is not None and 0.0 <= values.rsi <= 100.0
    assert values.bb_lower is not None and values.bb_upper is not None
    assert values.bb_lower <= values.bb_middle <= values.bb_upper  # type: ignore[operator]
    assert min(closes[-50:]) * (1 - 1e-12) <= values.sma_slow <= max(closes[-50:]) * (1 + 1e-12)  # type: ignore[operator]
