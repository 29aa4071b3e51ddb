"""Incremental O(1) technical indicators following TA-Lib's definitions; pure, no I/O."""

from analytics.indicators.bollinger import Bollinger, BollingerValue
from analytics.indicators.ema import EMA
from analytics.indicators.indicator_set import IndicatorParams, IndicatorSet, IndicatorValues
from analytics.indicators.macd import MACD, MacdValue
from analytics.indicators.rsi import RSI
from analytics.indicators.sma import SMA
from analytics.indicators.volatility import Volatility, annualization_factor

__all__ = [
    "EMA",
    "MACD",
    "RSI",
    "SMA",
    "Bollinger",
    "BollingerValue",
    "IndicatorParams",
    "IndicatorSet",
    "IndicatorValues",
    "MacdValue",
    "Volatility",
    "annualization_factor",
]
