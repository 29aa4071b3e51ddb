"""Indicator throughput: our incremental set vs talipp, TA-Lib batch and pandas recompute per bar.

`python -m bench.indicators` (full) or `--smoke` (the size `make test` runs). Prints name=value.
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import talib
from talipp import indicators as tp

from analytics.indicators import IndicatorParams, IndicatorSet, annualization_factor
from bench.harness import emit
from shared import hot_path

PARAMS = IndicatorParams()


def _closes(count: int) -> list[float]:
    """A seeded geometric random walk: realistic magnitudes, every bar a new value."""
    rng = random.Random(42)  # noqa: S311 - reproducible prices, not secrets
    price, out = 100.0, []
    for _ in range(count):
        price *= math.exp(rng.gauss(0.0, 0.01))
        out.append(price)
    return out


def _rate(count: int, run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def ours(closes: list[float]) -> None:
    indicators = IndicatorSet(PARAMS, annualization_factor("1d"))
    update = indicators.update
    for close in closes:
        update(close)


def talipp_set(closes: list[float]) -> None:
    """The same set in talipp, fed one bar at a time (volatility = StdDev of fed log returns)."""
    p = PARAMS
    parts = [
        tp.SMA(p.sma_fast),
        tp.SMA(p.sma_slow),
        tp.EMA(p.ema_fast),
        tp.EMA(p.ema_slow),
        tp.RSI(p.rsi),
        tp.MACD(p.macd_fast, p.macd_slow, p.macd_signal),
        tp.BB(p.bb_period, p.bb_k),
    ]
    vol = tp.StdDev(p.volatility)
    prev = None
    for close in closes:
        for part in parts:
            part.add(close)
        if prev is not None:
            vol.add(math.log(close / prev))
        prev = close


def talib_batch(closes: list[float]) -> None:
    p = PARAMS
    arr = np.asarray(closes)
    talib.SMA(arr, p.sma_fast)
    talib.SMA(arr, p.sma_slow)
    talib.EMA(arr, p.ema_fast)
    talib.EMA(arr, p.ema_slow)
    talib.RSI(arr, p.rsi)
    talib.MACD(arr, p.macd_fast, p.macd_slow, p.macd_signal)
    talib.BBANDS(arr, p.bb_period, p.bb_k, p.bb_k, matype=0)
    talib.STDDEV(np.diff(np.log(arr)), p.volatility)


def pandas_recompute(closes: list[float], window: int = 100) -> None:
    """The tutorial approach: at each bar, recompute the set over the trailing window."""
    p = PARAMS
    for i in range(len(closes)):
        s = pd.Series(closes[max(0, i + 1 - window) : i + 1])
        s.rolling(p.sma_fast).mean().iloc[-1]
        s.rolling(p.sma_slow).mean().iloc[-1]
        s.ewm(span=p.ema_fast, adjust=False).mean().iloc[-1]
        fast = s.ewm(span=p.macd_fast, adjust=False).mean()
        slow = s.ewm(span=p.macd_slow, adjust=False).mean()
        (fast - slow).ewm(span=p.macd_signal, adjust=False).mean().iloc[-1]
        delta = s.diff()
        up = delta.clip(lower=0).ewm(alpha=1 / p.rsi, adjust=False).mean()
        down = (-delta.clip(upper=0)).ewm(alpha=1 / p.rsi, adjust=False).mean()
        (100 - 100 / (1 + up / down)).iloc[-1]
        s.rolling(p.bb_period).std(ddof=0).iloc[-1]
        np.log(s).diff().rolling(p.volatility).std().iloc[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="small sizes for make test")
    args = parser.parse_args()
    n_ours, n_talipp, n_pandas = (20_000, 5_000, 300) if args.smoke else (1_000_000, 100_000, 3_000)
    emit("bench", "indicators")
    emit("python", platform.python_version())
    emit("hot_path", hot_path.state().replace(" ", "_"))  # compiled or not: shared/hot_path.py
    emit("params", ",".join(f"{k}={v}" for k, v in PARAMS.to_json().items()))
    emit("n_bars", n_ours)
    emit("n_bars_talipp", n_talipp)
    emit("n_bars_pandas", n_pandas)
    closes = _closes(n_ours)
    ours(closes[:2_000])  # warm the calendar cache and the interpreter before timing
    updates_per_s = _rate(n_ours, lambda: ours(closes))
    talipp_per_s = _rate(n_talipp, lambda: talipp_set(closes[:n_talipp]))
    emit("updates_per_s", updates_per_s)
    emit("talipp_bars_per_s", talipp_per_s)
    emit("speedup_vs_talipp", updates_per_s / talipp_per_s)
    emit("talib_batch_bars_per_s", _rate(n_ours, lambda: talib_batch(closes)))
    emit(
        "pandas_recompute_bars_per_s", _rate(n_pandas, lambda: pandas_recompute(closes[:n_pandas]))
    )


if __name__ == "__main__":
    main()
