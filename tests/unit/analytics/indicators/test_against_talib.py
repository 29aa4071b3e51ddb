"""Our indicators against TA-Lib (and a pandas volatility oracle) on every recorded Yahoo chart."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from analytics.indicators import EMA, MACD, RSI, SMA, Bollinger, IndicatorParams, Volatility


def _closes(path: Path) -> list[float]:
    result = json.loads(path.read_text())["chart"]["result"]
    if not result or "timestamp" not in result[0]:
        return []
    closes = result[0]["indicators"]["quote"][0].get("close", [])
    return [float(c) for c in closes if c is not None]


@pytest.fixture(scope="module")
def series(recordings: Path) -> list[Path]:
    """Every recorded Yahoo chart long enough to get past the slowest warm-up."""
    return [p for p in sorted((recordings / "yahoo").glob("chart_*.json")) if len(_closes(p)) > 60]


def _check(
    name: str, ours: list[float | None], theirs: np.ndarray, closes: list[float], warmup: int
):
    for i, close in enumerate(closes):
        if i < warmup:
            assert ours[i] is None, f"{name}: value during warm-up at bar {i}"
            continue
        a, b = ours[i], float(theirs[i])
        assert a is not None and not math.isnan(b), f"{name}: missing value at bar {i}"
        assert abs(a - b) <= 1e-9 * max(abs(b), close), f"{name} bar {i}: {a} vs {b}"


def test_series_found(series: list[Path]) -> None:
    assert len(series) >= 8


def test_against_talib(series: list[Path], subtests: pytest.Subtests) -> None:
    for path in series:
        with subtests.test(path.stem):
            _check_all(_closes(path))


def _check_all(closes: list[float]) -> None:
    arr = np.asarray(closes)
    p = IndicatorParams()
    for n in (p.sma_fast, p.sma_slow):
        sma = SMA(n)
        _check(f"SMA{n}", [sma.update(c) for c in closes], talib.SMA(arr, n), closes, sma.warmup)
    for n in (p.ema_fast, p.ema_slow):
        ema = EMA(n)
        _check(f"EMA{n}", [ema.update(c) for c in closes], talib.EMA(arr, n), closes, ema.warmup)
    rsi = RSI(p.rsi)
    _check("RSI", [rsi.update(c) for c in closes], talib.RSI(arr, p.rsi), closes, rsi.warmup)

    macd = MACD(p.macd_fast, p.macd_slow, p.macd_signal)
    got = [macd.update(c) for c in closes]
    line, signal, hist = talib.MACD(arr, p.macd_fast, p.macd_slow, p.macd_signal)
    for field, theirs in (("macd", line), ("signal", signal), ("hist", hist)):
        ours = [None if v is None else getattr(v, field) for v in got]
        _check(f"MACD.{field}", ours, theirs, closes, macd.warmup)

    bands = Bollinger(p.bb_period, p.bb_k)
    got_bb = [bands.update(c) for c in closes]
    upper, middle, lower = talib.BBANDS(arr, p.bb_period, p.bb_k, p.bb_k, matype=0)
    for field, theirs in (("lower", lower), ("middle", middle), ("upper", upper)):
        ours = [None if v is None else getattr(v, field) for v in got_bb]
        _check(f"BB.{field}", ours, theirs, closes, bands.warmup)

    vol = Volatility(p.volatility, annualization=15.0)
    oracle = np.log(pd.Series(arr)).diff().rolling(p.volatility).std(ddof=1) * 15.0
    _check("vol", [vol.update(c) for c in closes], oracle.to_numpy(), closes, vol.warmup)


def test_macd_first_value_is_not_two_naive_emas(series: list[Path]) -> None:
    closes = _closes(series[0])
    fast, slow, naive = EMA(12), EMA(26), MACD(12, 26, 9)
    line = [None if v is None else v.macd for v in map(naive.update, closes)]
    talib_line = talib.MACD(np.asarray(closes), 12, 26, 9)[0]
    pairs = [(fast.update(c), slow.update(c)) for c in closes]
    first_naive = pairs[33][0] - pairs[33][1]  # type: ignore[operator]
    assert line[33] == pytest.approx(talib_line[33], rel=1e-12)
    assert abs(first_naive - talib_line[33]) > 1e-9
