"""Batch predictions of the next-bar direction: `python -m ml.predict [--model FILE]
[--symbols AAPL,MSFT] [--from DATE] [--to DATE]`.

For every stored bar in range whose features are complete, P(next bar up) and the predicted
direction go into `predictions`, keyed (model_version, symbol, interval, ts): a rerun adds
nothing. The model is `--model`, or the newest file in `--models-dir`; symbols default to the
model's, the interval is the model's. Prints name=value lines.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from ml import direction_files
from ml.cli import DEFAULT_MODELS_DIR, emit, symbol_list, utc_time
from ml.direction_store import load_series, save_predictions
from ml.features import FEATURES, bar_features, complete
from shared.errors import SettingsError
from shared.settings import PostgresSettings, build

PROG = "python -m ml.predict"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1])
    parser.add_argument("--model", type=Path, help="a model file (default: the newest one)")
    parser.add_argument(
        "--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help="default .local/models"
    )
    parser.add_argument(
        "--symbols", type=symbol_list, action="extend", help="default: the model's symbols"
    )
    parser.add_argument("--from", dest="since", type=utc_time, help="first bar (date or ISO time)")
    parser.add_argument("--to", dest="until", type=utc_time, help="last bar, inclusive")
    return parser.parse_args(argv)


@dataclass
class Scored:
    """What is to be written, and the counts the summary reports."""

    symbols: list[str] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)
    bars: int = 0
    other_periods: int = 0
    in_training_window: int = 0

    def add(
        self, symbol: str, bars: pd.DataFrame, meta: dict[str, Any], args: argparse.Namespace
    ) -> None:
        """The bars of one series (from load_series) that are in range, have every feature, and
        whose indicators were computed with the model's periods."""
        features = bar_features(bars)
        ts = pd.to_datetime(bars["ts"], utc=True)
        in_range = np.ones(len(bars), dtype=bool)
        if args.since is not None:
            in_range &= (ts >= args.since).to_numpy()
        if args.until is not None:
            in_range &= (ts <= args.until).to_numpy()
        params = meta.get("indicator_params")
        same_periods = np.array([params is None or p == params for p in bars["params"]], bool)
        full = in_range & complete(features)
        keep = full & same_periods
        self.bars += int(in_range.sum())
        self.other_periods += int((full & ~same_periods).sum())
        if symbol in meta["symbols"]:
            # In-sample: the bar after this one was a training target.
            after = ts.shift(-1)
            inside = (after >= pd.Timestamp(meta["first_ts"])) & (
                after <= pd.Timestamp(meta["last_ts"])
            )
            self.in_training_window += int((inside.to_numpy() & keep).sum())
        self.symbols.extend([symbol] * int(keep.sum()))
        self.times.extend(bars.loc[keep, "ts"])
        self.features.append(features.loc[keep, list(FEATURES)].to_numpy(dtype=float))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        path = args.model or direction_files.newest(args.models_dir)
        model = direction_files.load(path)
    except (OSError, ValueError) as exc:
        print(f"ml.predict: {exc}", file=sys.stderr)
        return 2
    meta = model.metadata
    symbols = list(dict.fromkeys(args.symbols or meta["symbols"]))
    interval = meta["interval"]
    try:
        conn = psycopg.connect(build(PostgresSettings).conninfo())
    except (SettingsError, psycopg.OperationalError) as exc:
        print(f"ml.predict: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    scored = Scored()
    with conn:
        for symbol in symbols:
            # To the newest bar, past --to: the bar after a scored one tells if it was a target.
            scored.add(symbol, load_series(conn, symbol, interval, args.since), meta, args)
        if not scored.times:
            print(
                f"ml.predict: not enough data: no bar of {','.join(symbols)} {interval} in range"
                " has full features (5 lagged returns and every indicator, with the model's"
                " indicator periods)",
                file=sys.stderr,
            )
            return 1
        X = np.vstack(scored.features)
        probability = model.probability_up(X)
        predicted = model.pipeline.predict(X) == 1
        written = save_predictions(conn, meta, scored.symbols, scored.times, probability, predicted)
    emit("model_version", model.version)
    emit("model_path", path)
    emit("symbols", ",".join(symbols))
    emit("interval", interval)
    emit("bars", scored.bars)
    emit("bars_scored", len(scored.times))
    emit("bars_other_indicator_periods", scored.other_periods)
    emit("in_training_window", scored.in_training_window)
    emit("predicted_up", int(predicted.sum()))
    emit("rows_written", written)
    emit("rows_already_there", len(scored.times) - written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
