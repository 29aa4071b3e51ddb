"""Seeded synthetic log closes for the forecasting tests."""

from __future__ import annotations

import numpy as np


def random_walk(n: int, seed: int, drift: float = 0.0005, sd: float = 0.02) -> np.ndarray:
    """Log closes of a Gaussian random walk with drift, starting at log(100)."""
    steps = np.random.default_rng(seed).normal(drift, sd, n)
    return np.log(100.0) + np.cumsum(steps)


def white_noise(n: int, seed: int, sd: float = 0.02) -> np.ndarray:
    """Log closes fluctuating around log(100) without memory (level-stationary)."""
    return np.log(100.0) + np.random.default_rng(seed).normal(0.0, sd, n)


def explosive(n: int, seed: int, phi: float = 1.02) -> np.ndarray:
    """Log closes whose deviation from log(100) follows an AR(1) with φ > 1."""
    shocks = np.random.default_rng(seed).normal(0.0, 0.01, n)
    deviation = np.zeros(n)
    for t in range(1, n):
        deviation[t] = phi * deviation[t - 1] + shocks[t]
    return np.log(100.0) + deviation
