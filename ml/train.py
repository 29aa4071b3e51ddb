"""Train the next-bar direction model on stored bars: `python -m ml.train --symbols AAPL,MSFT
--interval 1d [--from DATE] [--to DATE] [--models-dir DIR]`.

Reads `bars_with_indicators_adjusted` (split-adjusted prices and indicators) from PostgreSQL
(POSTGRES_* settings), validates on time-series splits, fits on every target in the range and
writes `direction-VERSION.joblib` into the models folder. Prints name=value lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg

from ml import direction, direction_files
from ml.cli import DEFAULT_MODELS_DIR, emit, symbol_list, utc_time
from ml.direction_store import load_series
from shared.errors import SettingsError
from shared.settings import PostgresSettings, build

PROG = "python -m ml.train"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "--symbols", type=symbol_list, action="extend", required=True, help="e.g. AAPL,MSFT"
    )
    parser.add_argument("--interval", required=True, help="bar interval, e.g. 1d")
    parser.add_argument(
        "--from", dest="since", type=utc_time, help="first target bar (date or ISO time)"
    )
    parser.add_argument("--to", dest="until", type=utc_time, help="last target bar, inclusive")
    parser.add_argument(
        "--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help="default .local/models"
    )
    parser.add_argument(
        "--c", type=float, default=direction.C, help=f"inverse L2 strength (default {direction.C})"
    )
    parser.add_argument("--splits", type=int, default=direction.N_SPLITS, help="validation folds")
    return parser.parse_args(argv)


def indicator_params(series: dict[str, pd.DataFrame]) -> dict[str, Any] | None:
    """The one set of indicator periods of the bars read; ValueError when they are mixed."""
    found: list[dict[str, Any]] = []
    for bars in series.values():
        for params in bars["params"]:
            if params is not None and params not in found:
                found.append(params)
    if len(found) > 1:
        raise ValueError(
            f"the indicators read were computed with {len(found)} different sets of periods"
            " (indicator_params): recompute them (python -m analytics.recompute) or narrow --from"
        )
    return found[0] if found else None


def describe(args: argparse.Namespace) -> str:
    window = f" from {args.since.isoformat() if args.since else 'the start'}"
    window += f" to {args.until.isoformat() if args.until else 'the end'}"
    return f"{','.join(args.symbols)} {args.interval}{window}"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        conninfo = build(PostgresSettings).conninfo()
        conn = psycopg.connect(conninfo)
    except (SettingsError, psycopg.OperationalError) as exc:
        print(f"ml.train: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    with conn:
        series = {
            symbol: load_series(conn, symbol, args.interval, args.since, args.until)
            for symbol in dict.fromkeys(args.symbols)
        }
    try:
        params = indicator_params(series)
        data = direction.TrainingSet.from_series(series, args.since)
        extra = {
            "indicator_params": params,
            "requested": {
                "from": args.since.isoformat() if args.since else None,
                "to": args.until.isoformat() if args.until else None,
            },
            "rows_by_symbol": {s: int((data.symbols == s).sum()) for s in series},
        }
        model = direction.train(data, args.interval, c=args.c, n_splits=args.splits, extra=extra)
    except direction.NotEnoughDataError as exc:
        print(f"ml.train: not enough data for {describe(args)}: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"ml.train: {describe(args)}: {exc}", file=sys.stderr)
        return 1
    path = direction_files.save(model, args.models_dir)
    report(model.metadata, path)
    return 0


def report(metadata: dict[str, Any], path: Path) -> None:
    emit("model_version", metadata["version"])
    emit("model_path", path)
    emit("symbols", ",".join(metadata["symbols"]))
    emit("interval", metadata["interval"])
    emit("first_ts", metadata["first_ts"])
    emit("last_ts", metadata["last_ts"])
    emit("rows", metadata["rows"])
    emit("features", ",".join(metadata["features"]))
    emit("folds", len(metadata["folds"]))
    for name, value in metadata["metrics"].items():
        emit(name, value)


if __name__ == "__main__":
    sys.exit(main())
