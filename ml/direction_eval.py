"""Out-of-sample accuracy of the direction model on the recorded daily series:
`python -m ml.direction_eval`.

Fixed protocol: every recorded daily Yahoo series of at least 250 bars, indicators computed bar
by bar with the analytics consumer's own code and default periods (`SeriesState`), each series
validated alone on N_SPLITS time-series splits (fit on the past, score on the next fold). The
baseline predicts each fold the majority direction of its training part. Prints name=value
lines per series, then over all test rows.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path

import pandas as pd

from analytics.indicators import IndicatorParams, annualization_factor
from analytics.series import SeriesState
from ml.cli import emit
from ml.direction import N_SPLITS, C, Fold, TrainingSet, out_of_sample, validate
from ml.features import INDICATOR_COLUMNS
from ml.yahoo_recordings import DailySeries, recorded_daily_series

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings" / "yahoo"
MIN_SERIES_BARS = 250


def bars_with_indicators(
    series: DailySeries, params: IndicatorParams | None = None
) -> pd.DataFrame:
    """The series as rows of bars_with_indicators would hold it: ts (session date, 00:00 UTC),
    close and the indicator columns the analytics consumer computes (NaN during warm-up)."""
    state = SeriesState.new(params or IndicatorParams(), annualization_factor("1d", "XNYS"))
    rows = []
    for day, close in zip(series.days, series.closes, strict=True):
        ts = datetime.combine(day, time(), tzinfo=UTC)
        values = state.feed(ts, float(close), 1.0)._asdict()
        rows.append({"ts": ts, "close": float(close)} | {k: values[k] for k in INDICATOR_COLUMNS})
    return pd.DataFrame(rows).astype({name: float for name in INDICATOR_COLUMNS})


def evaluate(series: Sequence[DailySeries], c: float = C) -> dict[str, list[Fold]]:
    """Each series' folds."""
    return {
        s.name: validate(TrainingSet.from_series({s.name: bars_with_indicators(s)}), c, N_SPLITS)
        for s in series
    }


def pooled(results: dict[str, list[Fold]]) -> dict[str, float | int]:
    """The out-of-sample figures over every test row of every series."""
    return out_of_sample([fold for folds in results.values() for fold in folds])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.direction_eval", description=__doc__)
    parser.parse_args(argv)
    results = evaluate(recorded_daily_series(RECORDINGS, MIN_SERIES_BARS))
    emit("model", "direction-logit-l2")
    emit("n_splits", N_SPLITS)
    emit("series", len(results))
    for name, folds in results.items():
        figures = out_of_sample(folds)
        for key in ("oos_rows", "oos_accuracy", "baseline_accuracy", "oos_up_share"):
            emit(f"{name}.{key}", figures[key])
    for key, value in pooled(results).items():
        emit(key, value)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
