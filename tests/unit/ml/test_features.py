"""Direction features: the columns on a hand-made series, and no look-ahead (property tests)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.indicators import IndicatorParams
from ml.direction_eval import bars_with_indicators
from ml.features import FEATURES, INDICATOR_COLUMNS, bar_features, complete, targets
from ml.yahoo_recordings import DailySeries

CLOSES = [100.0, 110.0, 99.0, 99.0, 120.0, 118.0, 121.0, 125.0]
# Indicators of bars 5 and 6 only (NaN elsewhere, as in a warm-up).
BAR5 = {
    "sma_fast": 110.0,
    "sma_slow": 100.0,
    "rsi": 60.0,
    "macd": 2.36,
    "macd_hist": 0.59,
    "bb_lower": 108.0,
    "bb_middle": 110.0,
    "bb_upper": 112.0,
    "volatility": 0.3,
}
BAR6 = BAR5 | {"bb_lower": 111.0, "bb_upper": 111.0}  # a flat band


def hand_made() -> pd.DataFrame:
    bars = pd.DataFrame({"close": CLOSES} | {name: math.nan for name in INDICATOR_COLUMNS})
    for row, values in ((5, BAR5), (6, BAR6)):
        for name, value in values.items():
            bars.loc[row, name] = value
    return bars


def test_feature_columns_on_a_hand_made_series() -> None:
    frame = targets(hand_made())
    assert list(frame.columns) == [*FEATURES, "up"]
    np.testing.assert_array_equal(frame["up"], [np.nan, 1, 0, 0, 1, 0, 1, 1])
    # Target 6 (121 after 118) is described by bar 5 and the closes before it.
    row = frame.loc[6]
    expected = {
        "ret_1": math.log(118 / 120),
        "ret_2": math.log(120 / 99),
        "ret_3": 0.0,
        "ret_4": math.log(99 / 110),
        "ret_5": math.log(110 / 100),
        "close_vs_sma_fast": 118 / 110 - 1,
        "close_vs_sma_slow": 0.18,
        "rsi": 60.0,
        "macd_rel": 2.36 / 118,
        "macd_hist_rel": 0.59 / 118,
        "bb_percent_b": (118 - 108) / (112 - 108),
        "bb_width": 4 / 110,
        "volatility": 0.3,
    }
    assert row[list(FEATURES)].to_dict() == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # A flat band puts the close in its middle.
    assert frame.loc[7, "bb_percent_b"] == 0.5
    assert frame.loc[7, "ret_1"] == pytest.approx(math.log(121 / 118))
    # Only targets 6 and 7 have every feature; as-of-bar features exist for bars 5 and 6.
    assert np.flatnonzero(complete(frame)).tolist() == [6, 7]
    assert np.flatnonzero(complete(bar_features(hand_made()))).tolist() == [5, 6]


def test_targets_are_bar_features_one_bar_later() -> None:
    bars = hand_made()
    shifted = bar_features(bars).shift(1)
    pd.testing.assert_frame_equal(targets(bars)[list(FEATURES)], shifted)


closes = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
indicator_values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@st.composite
def bar_rows(draw: st.DrawFn, count: int) -> pd.DataFrame:
    rows = [
        {"close": draw(closes)} | {name: draw(indicator_values) for name in INDICATOR_COLUMNS}
        for _ in range(count)
    ]
    frame = pd.DataFrame(rows, columns=["close", *INDICATOR_COLUMNS])
    return frame.astype(float)


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_no_look_ahead(data: st.DataObject) -> None:
    """Whatever bars t, t+1, … hold, the features of target t stay the same."""
    count = data.draw(st.integers(min_value=1, max_value=30), label="bars")
    bars = data.draw(bar_rows(count), label="bars")
    t = data.draw(st.integers(min_value=0, max_value=count - 1), label="target")
    changed = data.draw(bar_rows(count - t), label="bars from t on")
    perturbed = pd.concat([bars.iloc[:t], changed], ignore_index=True)
    before = targets(bars).loc[t, list(FEATURES)].to_numpy(dtype=float)
    after = targets(perturbed).loc[t, list(FEATURES)].to_numpy(dtype=float)
    np.testing.assert_array_equal(before, after)  # NaN where NaN, bit for bit elsewhere


SHORT = IndicatorParams(
    sma_fast=3,
    sma_slow=5,
    ema_fast=2,
    ema_slow=4,
    rsi=3,
    macd_fast=2,
    macd_slow=4,
    macd_signal=2,
    bb_period=3,
    volatility=3,
)


def with_indicators(values: list[float]) -> pd.DataFrame:
    days = tuple(date(2024, 1, 1) + timedelta(days=i) for i in range(len(values)))
    return bars_with_indicators(DailySeries("x", days, np.array(values)), SHORT)


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_no_look_ahead_through_the_indicators(data: st.DataObject) -> None:
    """The same with the indicators computed from the closes as the analytics consumer does:
    changing closes from bar t on changes nothing the target t sees."""
    values = data.draw(st.lists(closes, min_size=2, max_size=40), label="closes")
    t = data.draw(st.integers(min_value=1, max_value=len(values) - 1), label="target")
    changed = data.draw(st.lists(closes, min_size=1, max_size=40), label="closes from t on")
    before = targets(with_indicators(values)).loc[t, list(FEATURES)]
    after = targets(with_indicators(values[:t] + changed)).loc[t, list(FEATURES)]
    np.testing.assert_array_equal(before.to_numpy(dtype=float), after.to_numpy(dtype=float))
