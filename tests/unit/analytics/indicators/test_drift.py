"""Rolling sums do not drift: 1,000,000 adversarial updates against exact recomputation."""

from __future__ import annotations

import math
import os
import random
from fractions import Fraction

import pytest

from analytics.indicators import SMA, Bollinger
from analytics.indicators.rolling import RollingWindow

LONG = os.environ.get("INDICATOR_LONG_RUN") == "1"


def _adversarial(count: int, seed: int = 7) -> list[float]:
    """Alternating tiny (~1e-6) and huge (~1e9) values, with random mantissas."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    return [rng.uniform(1e-6, 2e-6) if i % 2 else rng.uniform(1e8, 1e9) for i in range(count)]


def _run(count: int, period: int = 20, samples: int = 200) -> None:
    window = RollingWindow(period, squares=True)
    every = max(count // samples, 1)
    worst = 0.0
    for i, x in enumerate(_adversarial(count)):
        window.push(x)
        if i >= period and (i % every == 0 or i == count - 1):
            exact = math.fsum(window.values)
            exact_sq = Fraction(0)
            for v in window.values:
                exact_sq += Fraction(v) ** 2
            worst = max(worst, abs(window.total - exact) / abs(exact))
            assert window.total == pytest.approx(exact, rel=4e-16, abs=0.0), i
            assert window.total_squares == pytest.approx(float(exact_sq), rel=4e-16, abs=0.0), i
    assert worst <= 4e-16


def test_one_million_adversarial_updates() -> None:
    _run(1_000_000)


@pytest.mark.skipif(not LONG, reason="set INDICATOR_LONG_RUN=1 for the 10-million run")
def test_ten_million_adversarial_updates() -> None:
    _run(10_000_000, samples=1000)


def test_small_values_after_huge_ones_are_exact() -> None:
    """The case a naive running sum gets wrong: huge values leave, tiny ones remain."""
    sma, naive_sum = SMA(5), 0.0
    xs = [1e9 + 0.1 * i for i in range(1000)] + [1e-6 * (i + 1) for i in range(5)]
    window: list[float] = []
    value = None
    for x in xs:
        value = sma.update(x)
        window.append(x)
        naive_sum += x - (window[-6] if len(window) > 5 else 0.0)
    exact = math.fsum(window[-5:]) / 5
    assert value == pytest.approx(exact, rel=1e-15)
    assert abs(naive_sum / 5 - exact) / exact > 1e-3  # what the compensation buys


def test_bollinger_flat_series_has_zero_width_after_big_values() -> None:
    bands = Bollinger(20, 2.0)
    for x in [1e9, 1e-6] * 500 + [123.456] * 20:
        value = bands.update(x)
    assert value is not None
    assert value.upper == value.lower == pytest.approx(123.456, rel=1e-15)
