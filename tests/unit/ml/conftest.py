"""Windows of recorded and seeded log closes for the forecasting tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.forecast import log_closes
from ml.yahoo_recordings import read_chart

TSLA = "yahoo/chart_TSLA_1d_2010-06-29_2023-08-11.json"


@pytest.fixture(scope="session")
def tsla_log_closes(recordings: Path) -> np.ndarray:
    """All 3,303 recorded TSLA daily log closes, oldest first."""
    return log_closes(read_chart(recordings / TSLA).closes)
