"""Features and labels of the next-bar direction model, from one series' bars (pure).

A *target* is a bar t whose direction is learned: up when close_t > close_{t−1}. Its features
are those known at the close of bar t − 1 — lagged log returns and that bar's stored indicators,
made scale-free — so they use bars ≤ t − 1 only (tests/unit/ml/test_features.py proves it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RETURN_LAGS = 5
# The stored indicator columns the features read (the rest of the `indicators` row is redundant
# with these under the default periods: EMA(26) is MACD's slow EMA, SMA(20) Bollinger's middle).
INDICATOR_COLUMNS = (
    "sma_fast",
    "sma_slow",
    "rsi",
    "macd",
    "macd_hist",
    "bb_lower",
    "bb_middle",
    "bb_upper",
    "volatility",
)
FEATURES = (
    *(f"ret_{lag}" for lag in range(1, RETURN_LAGS + 1)),
    "close_vs_sma_fast",
    "close_vs_sma_slow",
    "rsi",
    "macd_rel",
    "macd_hist_rel",
    "bb_percent_b",
    "bb_width",
    "volatility",
)
# Bars before the first target that its features need (closes for RETURN_LAGS returns).
LOOKBACK_BARS = RETURN_LAGS + 1


def bar_features(bars: pd.DataFrame) -> pd.DataFrame:
    """The features known at the close of each bar: row i uses rows ≤ i only.

    `bars`: one series, oldest first, with `close` and INDICATOR_COLUMNS (NaN or None where
    there is no value). Price-valued indicators are divided by the close so that series of any
    price level (and pooled symbols) share one scale. NaN where an input is missing.
    """
    close = bars["close"].to_numpy(dtype=float)
    ind = {name: bars[name].to_numpy(dtype=float) for name in INDICATOR_COLUMNS}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_close = np.log(close)
        returns = np.concatenate(([np.nan], np.diff(log_close)))
        columns = {f"ret_{lag}": _lag(returns, lag - 1) for lag in range(1, RETURN_LAGS + 1)}
        band = ind["bb_upper"] - ind["bb_lower"]
        # A flat window has no band (upper = lower): the close sits in its middle.
        percent_b = np.where(band > 0, (close - ind["bb_lower"]) / band, 0.5)
        percent_b[np.isnan(band)] = np.nan
        columns.update(
            close_vs_sma_fast=close / ind["sma_fast"] - 1.0,
            close_vs_sma_slow=close / ind["sma_slow"] - 1.0,
            rsi=ind["rsi"],
            macd_rel=ind["macd"] / close,
            macd_hist_rel=ind["macd_hist"] / close,
            bb_percent_b=percent_b,
            bb_width=band / ind["bb_middle"],
            volatility=ind["volatility"],
        )
    frame = pd.DataFrame(columns, index=bars.index)[list(FEATURES)]
    return frame.where(np.isfinite(frame))


def targets(bars: pd.DataFrame) -> pd.DataFrame:
    """One row per bar as a target: FEATURES from the bar before it, and `up` (1.0 when its
    close is above the previous close, 0.0 when not, NaN for the first bar)."""
    frame = bar_features(bars).shift(1)
    close = bars["close"].to_numpy(dtype=float)
    up = np.full(len(close), np.nan)
    up[1:] = (close[1:] > close[:-1]).astype(float)
    frame["up"] = up
    return frame


def complete(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose every feature has a value."""
    return frame[list(FEATURES)].notna().all(axis=1).to_numpy()


def _lag(values: np.ndarray, lag: int) -> np.ndarray:
    """values[i − lag] at i (NaN before the start)."""
    lagged = np.full(len(values), np.nan)
    if lag < len(values):
        lagged[lag:] = values[: len(values) - lag]
    return lagged
