"""`python -m analytics.chart` on the known replayed data: each panel holds the expected series
with the expected point counts, and each panel's region of the PNG is drawn on."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import psycopg
import pytest
from matplotlib.collections import PathCollection

from analytics.chart import PANELS, draw, main
from analytics.chart_data import read_chart_data
from shared.settings import PostgresSettings
from tests.integration.known_data import KnownData, load_known_data

DAYS = 250


@pytest.fixture
def known(
    pg_settings: PostgresSettings, recordings: Path, monkeypatch: pytest.MonkeyPatch
) -> KnownData:
    monkeypatch.setenv("POSTGRES_DBNAME", pg_settings.dbname)
    return load_known_data(pg_settings.conninfo(), recordings)


def lines(ax: object) -> dict[str, np.ndarray]:
    return {line.get_label(): np.asarray(line.get_ydata(), float) for line in ax.get_lines()}  # type: ignore[attr-defined]


def finite(values: np.ndarray) -> int:
    return int(np.isfinite(values).sum())


def test_chart_panels_hold_the_series_and_the_png_is_drawn_in_each(
    known: KnownData, pg_settings: PostgresSettings, tmp_path: Path
) -> None:
    bars = known.bars["AAPL"]
    window = [b for b in bars if b.ts > bars[-1].ts - timedelta(days=DAYS)]
    indicators = [known.indicators[b.ts] for b in window]
    warm = {name: sum(v[i] is not None for v in indicators) for name, i in
            (("bb", 9), ("rsi", 4), ("macd", 5), ("signal", 6))}  # fmt: skip
    out = tmp_path / "aapl.png"
    assert main(["AAPL", "--interval", "1d", "--days", str(DAYS), "-o", str(out)]) == 0

    with psycopg.connect(pg_settings.as_reader().conninfo()) as conn:
        data = read_chart_data(conn, "AAPL", "1d", DAYS)
    figure = draw(data)
    price, rsi, macd = figure.axes[:3]
    assert [ax.get_label() for ax in (price, rsi, macd)] == list(PANELS)

    drawn = lines(price)
    assert len(drawn["close"]) == len(window) == 174
    # Split-adjusted: every close is the recording's (adjusted as of its fetch).
    assert all(
        math.isclose(c, b.recorded_close, rel_tol=1e-12)
        for c, b in zip(drawn["close"], window, strict=True)
    )
    for band in ("bb upper", "bb middle", "bb lower"):
        assert len(drawn[band]) == len(window) and finite(drawn[band]) == warm["bb"]
    # The cone: the origin's close then the 3 steps.
    assert len(drawn["forecast median"]) == 4
    assert drawn["forecast median"][0] == window[-1].recorded_close
    split_lines = [line for line in price.get_lines() if line.get_label() == "split"]
    assert len(split_lines) == 1
    markers = {c.get_label(): len(c.get_offsets()) for c in price.collections
               if isinstance(c, PathCollection)}  # fmt: skip
    assert markers == {"alert firing": 2, "alert resolved": 1}

    assert finite(lines(rsi)["rsi"]) == warm["rsi"] and len(lines(rsi)["rsi"]) == len(window)
    assert finite(lines(macd)["macd"]) == warm["macd"]
    assert finite(lines(macd)["signal"]) == warm["signal"]
    (histogram,) = macd.containers
    assert len(histogram) == len(window)

    image = mpimg.imread(out)
    height, width = image.shape[:2]
    assert (width, height) == (1200, 800)
    for ax in (price, rsi, macd):
        box = ax.get_window_extent()
        # Inside the spines, in image rows (origin at the top).
        top, bottom = int(height - box.y1) + 3, int(height - box.y0) - 3
        left, right = int(box.x0) + 3, int(box.x1) - 3
        region = image[top:bottom, left:right, :3]
        ink = np.any(region < 0.9, axis=2).mean()
        assert ink > 0.01, f"{ax.get_label()} panel is nearly empty ({ink:.3%} drawn)"


def test_a_symbol_without_bars_is_one_line(
    known: KnownData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ZZZZ", "-o", str(tmp_path / "z.png")]) == 1
    assert capsys.readouterr().err.strip() == "analytics.chart: no 1d bars of ZZZZ"
    assert not (tmp_path / "z.png").exists()
