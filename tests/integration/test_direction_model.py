"""The direction model on real PostgreSQL: `python -m ml.train` and `python -m ml.predict` through
their `main(argv)`, on recorded daily series stored with the analytics consumer's indicators."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path

import numpy as np
import psycopg
import pytest

from analytics.indicators import IndicatorParams, annualization_factor
from analytics.series import SeriesState
from ml import direction_files, predict, train
from ml.direction import time_splits
from ml.direction_store import load_series
from ml.features import FEATURES, INDICATOR_COLUMNS, RETURN_LAGS
from ml.yahoo_recordings import read_chart
from shared.settings import PostgresSettings

# Two series over the same sessions: the time splits must keep a day's bars on one side.
CHARTS = {"AAPL": "chart_AAPL_1d_2020.json", "AMZN": "chart_AMZN_1d_2020.json"}
INSERT_BAR = """
INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, adj_close, volume,
                        split_basis, source, event_id)
VALUES (%s, '1d', %s, %s, %s, %s, %s, %s, 1000, 1, 'test', %s)
"""
INSERT_PARAMS = "INSERT INTO indicator_params (params) VALUES (%s) RETURNING params_id"
INSERT_INDICATORS = """
INSERT INTO indicators (symbol, interval, ts, sma_fast, sma_slow, ema_fast, ema_slow, rsi, macd,
                        macd_signal, macd_hist, bb_lower, bb_middle, bb_upper, volatility,
                        params_id, split_basis)
VALUES (%s, '1d', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 1)
"""


@pytest.fixture
def stored(pg_settings: PostgresSettings, recordings: Path, monkeypatch: pytest.MonkeyPatch):
    """Both series' bars and indicators (default periods) in this test's database; the
    commands read POSTGRES_DBNAME. Returns how many bars of each have full features."""
    monkeypatch.setenv("POSTGRES_DBNAME", pg_settings.dbname)
    full: dict[str, list[datetime]] = {}
    params = IndicatorParams()
    with psycopg.connect(pg_settings.conninfo()) as conn, conn.cursor() as cur:
        cur.execute(INSERT_PARAMS, (json.dumps(params.to_json()),))
        (params_id,) = cur.fetchone()
        for symbol, name in CHARTS.items():
            series = read_chart(recordings / "yahoo" / name)
            state = SeriesState.new(params, annualization_factor("1d"))
            full[symbol] = []
            for i, (day, close) in enumerate(zip(series.days, series.closes, strict=True)):
                ts = datetime.combine(day, time(), tzinfo=UTC)
                values = state.feed(ts, float(close), 1.0)
                c = float(close)
                cur.execute(INSERT_BAR, (symbol, ts, c, c, c, c, c, f"{symbol}-{ts}"))
                cur.execute(INSERT_INDICATORS, (symbol, ts, *values, params_id))
                used = values._asdict()
                if i >= RETURN_LAGS and all(used[k] is not None for k in INDICATOR_COLUMNS):
                    full[symbol].append(ts)
    return full


def count(pg_settings: PostgresSettings, query: str) -> int:
    with psycopg.connect(pg_settings.conninfo()) as conn:
        (row,) = conn.execute(query).fetchall()
    return int(row[0])


def test_train_then_predict_twice(
    stored: dict[str, list[datetime]],
    pg_settings: PostgresSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    models = tmp_path / "models"
    argv = ["--symbols", "AAPL,AMZN", "--interval", "1d", "--models-dir", str(models)]
    assert train.main(argv) == 0
    trained = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())

    # The model file, with its metadata.
    (path,) = models.glob("direction-*.joblib")
    assert trained["model_path"] == str(path)
    model = direction_files.load(path)
    meta = model.metadata
    assert meta["version"] == trained["model_version"] and path.stem.endswith(meta["version"])
    assert meta["features"] == list(FEATURES)
    assert meta["symbols"] == ["AAPL", "AMZN"] and meta["interval"] == "1d"
    assert meta["indicator_params"] == IndicatorParams().to_json()
    # Targets: every bar after the first with full features (its features are that bar's).
    first_target = min(stored["AAPL"][1], stored["AMZN"][1])
    last_target = max(stored["AAPL"][-1], stored["AMZN"][-1])
    assert meta["first_ts"] == first_target.isoformat()
    assert meta["last_ts"] == last_target.isoformat()
    assert meta["rows"] == sum(len(ts) - 1 for ts in stored.values())
    assert {"oos_accuracy", "baseline_accuracy", "oos_rows"} <= set(meta["metrics"])
    assert float(trained["oos_accuracy"]) == pytest.approx(meta["metrics"]["oos_accuracy"])

    # No split trained on data after (or at the time of) its test fold.
    for fold in meta["folds"]:
        assert fold["train_last_ts"] < fold["test_first_ts"] <= fold["test_last_ts"]
    with psycopg.connect(pg_settings.conninfo()) as conn:
        times = np.sort(
            np.concatenate(
                [load_series(conn, s, "1d")["ts"].dt.tz_convert(None).to_numpy() for s in CHARTS]
            )
        ).astype("datetime64[ns]")
    for train_rows, test_rows in time_splits(times):
        assert times[train_rows].max() < times[test_rows].min()

    # Predictions: one row per bar with full features; a second run adds nothing.
    assert predict.main(["--models-dir", str(models)]) == 0
    first = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    expected = sum(len(ts) for ts in stored.values())
    assert int(first["bars_scored"]) == int(first["rows_written"]) == expected
    assert count(pg_settings, "SELECT count(*) FROM predictions") == expected
    assert count(pg_settings, "SELECT count(DISTINCT model_version) FROM predictions") == 1
    consistent = "SELECT count(*) FROM predictions WHERE (probability_up > 0.5) = predicted_up"
    assert count(pg_settings, consistent) == expected
    registered = (
        "SELECT count(*) FROM prediction_models WHERE metadata ->> 'version' = model_version"
    )
    assert count(pg_settings, registered) == 1
    assert predict.main(["--model", str(path)]) == 0
    second = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert second["rows_written"] == "0" and int(second["rows_already_there"]) == expected
    assert count(pg_settings, "SELECT count(*) FROM predictions") == expected

    # The newest bar of each series is predicted too (for the session after it).
    with psycopg.connect(pg_settings.conninfo()) as conn:
        newest = conn.execute("SELECT symbol, max(ts) FROM predictions GROUP BY symbol").fetchall()
    assert dict(newest) == {s: ts[-1] for s, ts in stored.items()}


def test_not_enough_data_is_one_line(
    stored: dict[str, list[datetime]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--symbols", "AAPL", "--interval", "1d", "--models-dir", str(tmp_path)]
    assert train.main([*argv, "--to", "2020-04-30"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ml.train: not enough data for AAPL 1d") and "\n" not in err
    assert not list(tmp_path.glob("*.joblib"))
    assert train.main(["--symbols", "NOPE", "--interval", "1d"]) == 1
    assert "0 bars with full features" in capsys.readouterr().err
