"""A forecaster series' state: a split moves the window to the new basis; exact round trips
(the whole document, and the stored window with the closes fed since)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from analytics.forecaster.series import REBASE_AFTER, ForecastBar, ForecastSeries, OpenOrigin
from analytics.packed_state import decode_values, encode_document, encode_values, state_document

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
    series.pending = True
    series.held = [
        ForecastBar(T0 + timedelta(days=5, hours=h), 101.0 + h / 7, 1200 + h, 1.0, T0, 1_700 + h)
        for h in range(2)
    ]
    restored = ForecastSeries.from_state(series.to_state(), series.last_ts)
    assert restored == series
    document, window = series.stored()  # the stored (MessagePack) form too
    assert window is not None
    packed = state_document(encode_document(document), None)
    assert ForecastSeries.from_state(packed, series.last_ts, (series.bars, window)) == series
    assert series.newest_ts == T0 + timedelta(days=5, hours=1)
    assert list(restored.log_closes) == list(series.log_closes)  # bit for bit
    copy = series.copy()
    copy.feed(T0 + timedelta(days=9), 200.0, 1.0)
    assert copy.bars == series.bars + 1 and list(series.log_closes) != list(copy.log_closes)


def test_the_window_is_stored_every_64_bars_and_at_a_split_and_the_state_continues_it() -> None:
    """What a save writes (`stored`): the closes fed since the stored window, and the whole
    window only when 64 bars were fed since it (or a split moved it). Loading the two gives the
    series back bit for bit after every save, through the stored (MessagePack) forms."""
    rng = random.Random(3)  # noqa: S311 - a reproducible price path
    series = ForecastSeries.new(window=100)
    close, basis = 100.0, 1.0
    stored_window: tuple[int, list[float]] | None = None
    written_at: list[int] = []
    for i in range(300):
        if i == 150:  # a 2:1 split before bar 151
            close, basis = close / 2, 2.0
        close *= 1 + rng.gauss(0.0, 0.01)
        series.feed(T0 + timedelta(minutes=i), close, basis)
        if series.bars % 3:
            continue  # a save every third bar: a batch fed three bars of the series
        document, window = series.stored()
        if window is not None:
            written_at.append(series.bars)
            stored_window = (series.bars, decode_values(encode_values(window)))
        assert len(document["tail"]) < REBASE_AFTER
        loaded = state_document(encode_document(document), None)
        restored = ForecastSeries.from_state(loaded, series.last_ts, stored_window)
        assert restored == series
        assert list(restored.log_closes) == list(series.log_closes)  # bit for bit
        assert restored.log_closes.maxlen == series.log_closes.maxlen
    assert written_at == [3, 69, 135, 153, 219, 285]


def test_a_state_without_the_window_it_continues_is_refused() -> None:
    series = ForecastSeries.new(window=10)
    for i in range(5):
        series.feed(T0 + timedelta(days=i), 100.0 + i, 1.0)
    document, window = series.stored()
    assert window is not None
    with pytest.raises(ValueError, match="stored at bar 5, found none"):
        ForecastSeries.from_state(document, series.last_ts, None)
    with pytest.raises(ValueError, match="stored at bar 5, found bar 4"):
        ForecastSeries.from_state(document, series.last_ts, (4, window))
