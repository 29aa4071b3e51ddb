"""A forecaster series' state: a split moves the window to the new basis; exact round trip."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from analytics.forecaster.series import ForecastSeries, OpenOrigin

T0 = datetime(2024, 1, 2, tzinfo=UTC)


def test_a_split_rescales_the_window_so_it_is_no_crash_in_price() -> None:
    series = ForecastSeries.new(window=10)
    for i, close in enumerate([300.0, 303.0, 306.0]):
        series.feed(T0 + timedelta(days=i), close, 1.0)
    series.feed(T0 + timedelta(days=3), 103.0, 3.0)  # 3:1 split between the bars
    closes = [math.exp(v) for v in series.log_closes]
    assert [round(c, 9) for c in closes] == [100.0, 101.0, 102.0, 103.0]
    assert series.split_basis == 3.0 and series.bars == 4


def test_state_round_trips_exactly() -> None:
    series = ForecastSeries.new(window=3)
    for i in range(5):
        series.feed(T0 + timedelta(days=i), 100.0 + i / 3, 1.0)
    series.order, series.refits_left = (1, 1, 0), 4
    steps = ((1.1, 1.0, 1.2, 0.9, 1.3),)
    series.open.append(OpenOrigin(T0, 4, 1.0, 0.123456789, {"arima": steps}))
    restored = ForecastSeries.from_state(series.to_state(), series.last_ts)
    assert restored == series
    assert list(restored.log_closes) == list(series.log_closes)  # bit for bit
    copy = series.copy()
    copy.feed(T0 + timedelta(days=9), 200.0, 1.0)
    assert copy.bars == series.bars + 1 and list(series.log_closes) != list(copy.log_closes)
