"""Next-bar direction (up / not up): standardised features into an L2 logistic regression,
validated on time-series splits only (pure: no files, no database; see ml.direction_files)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml.features import FEATURES, complete, targets
from ml.metrics import wilson

KIND = "direction-logit-l2"
MIN_ROWS = 100  # targets with full features: 5 test folds of at least ~16 rows each
N_SPLITS = 5
C = 1.0  # inverse L2 strength, fixed up front (not tuned on the folds that score it)


class NotEnoughDataError(ValueError):
    """Too few targets with full features (or one class only) to fit and validate a model."""


@dataclass(frozen=True)
class TrainingSet:
    """Targets of one or more series: features, label, target bar time (UTC), symbol."""

    X: np.ndarray
    y: np.ndarray
    times: np.ndarray  # datetime64[ns], UTC
    symbols: np.ndarray

    @classmethod
    def from_series(
        cls, series: Mapping[str, pd.DataFrame], since: datetime | None = None
    ) -> TrainingSet:
        """Every labelled target with full features (at or after `since`), per symbol's bars
        (oldest first, a `ts` column beside `close` and the indicator columns), ordered by
        time, then symbol."""
        parts = []
        for symbol, bars in series.items():
            frame = targets(bars)
            keep = complete(frame) & frame["up"].notna().to_numpy()
            if since is not None:
                keep &= (pd.to_datetime(bars["ts"], utc=True) >= since).to_numpy()
            part = frame.loc[keep, list(FEATURES)].copy()
            part["up"] = frame.loc[keep, "up"].astype(int)
            part["time"] = utc_times(bars.loc[keep, "ts"])
            part["symbol"] = symbol
            parts.append(part)
        rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if rows.empty:
            return cls(
                np.empty((0, len(FEATURES))),
                np.empty(0, dtype=int),
                np.empty(0, dtype="datetime64[ns]"),
                np.empty(0, dtype=str),
            )
        rows = rows.sort_values(["time", "symbol"], kind="stable")
        return cls(
            rows[list(FEATURES)].to_numpy(dtype=float),
            rows["up"].to_numpy(dtype=int),
            rows["time"].to_numpy(dtype="datetime64[ns]"),
            rows["symbol"].to_numpy(dtype=str),
        )


@dataclass(frozen=True)
class Fold:
    """One time-series split: what it trained on, what it was scored on, and how well."""

    train_rows: int
    test_rows: int
    train_first_ts: str
    train_last_ts: str
    test_first_ts: str
    test_last_ts: str
    correct: int
    baseline_correct: int  # the training fold's majority class, predicted for every test row
    test_up: int


@dataclass(frozen=True)
class DirectionModel:
    """A fitted pipeline and what it was fitted on (`metadata` is JSON-ready)."""

    pipeline: Pipeline
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    def probability_up(self, X: np.ndarray) -> np.ndarray:
        """P(next bar up) for each row of features (in FEATURES order)."""
        up = list(self.pipeline.classes_).index(1)
        return self.pipeline.predict_proba(X)[:, up]


def make_pipeline(c: float = C) -> Pipeline:
    """Standardise, then an L2-regularised logistic regression (deterministic lbfgs)."""
    return Pipeline([("scale", StandardScaler()), ("logit", LogisticRegression(C=c, l1_ratio=0.0))])


def time_splits(times: np.ndarray, n_splits: int = N_SPLITS) -> list[tuple[np.ndarray, np.ndarray]]:
    """TimeSeriesSplit over the distinct target times, as row indices: every training row is
    strictly older than every test row, and the bars of several symbols at one time never sit
    on both sides. No shuffling anywhere."""
    distinct = np.unique(times)  # sorted
    if len(distinct) <= n_splits:
        raise NotEnoughDataError(f"{len(distinct)} distinct bar times for {n_splits} splits")
    splits = []
    for train, test in TimeSeriesSplit(n_splits=n_splits).split(distinct):
        last_train, first_test, last_test = (
            distinct[train[-1]],
            distinct[test[0]],
            distinct[test[-1]],
        )
        splits.append(
            (
                np.flatnonzero(times <= last_train),
                np.flatnonzero((times >= first_test) & (times <= last_test)),
            )
        )
    return splits


def validate(data: TrainingSet, c: float = C, n_splits: int = N_SPLITS) -> list[Fold]:
    """Fit on each split's past, score on its future."""
    folds = []
    for number, (train, test) in enumerate(time_splits(data.times, n_splits), 1):
        y_train, y_test = data.y[train], data.y[test]
        if len(np.unique(y_train)) < 2:
            raise NotEnoughDataError(f"training fold {number} holds one direction only")
        model = make_pipeline(c).fit(data.X[train], y_train)
        majority = int(y_train.mean() >= 0.5)
        folds.append(
            Fold(
                train_rows=len(train),
                test_rows=len(test),
                train_first_ts=_iso(data.times[train[0]]),
                train_last_ts=_iso(data.times[train[-1]]),
                test_first_ts=_iso(data.times[test[0]]),
                test_last_ts=_iso(data.times[test[-1]]),
                correct=int((model.predict(data.X[test]) == y_test).sum()),
                baseline_correct=int((y_test == majority).sum()),
                test_up=int(y_test.sum()),
            )
        )
    return folds


def out_of_sample(folds: list[Fold]) -> dict[str, float | int]:
    """Accuracy over every test row of every fold, beside the majority-class baseline's."""
    rows = sum(f.test_rows for f in folds)
    correct = sum(f.correct for f in folds)
    low, high = wilson(correct, rows)
    return {
        "oos_rows": rows,
        "oos_accuracy": correct / rows if rows else float("nan"),
        "oos_accuracy_ci_low": low,
        "oos_accuracy_ci_high": high,
        "baseline_accuracy": sum(f.baseline_correct for f in folds) / rows
        if rows
        else float("nan"),
        "oos_up_share": sum(f.test_up for f in folds) / rows if rows else float("nan"),
    }


def train(
    data: TrainingSet,
    interval: str,
    *,
    c: float = C,
    n_splits: int = N_SPLITS,
    extra: Mapping[str, Any] | None = None,
) -> DirectionModel:
    """Validate on time-series splits, then fit on every row. NotEnoughDataError when there are
    fewer than MIN_ROWS targets or a single direction. `extra` joins the metadata as given."""
    if len(data.y) < MIN_ROWS:
        raise NotEnoughDataError(
            f"{len(data.y)} bars with full features and a next bar (need at least {MIN_ROWS})"
        )
    if len(np.unique(data.y)) < 2:
        raise NotEnoughDataError("every target moved the same way: nothing to learn")
    folds = validate(data, c, n_splits)
    pipeline = make_pipeline(c).fit(data.X, data.y)
    hyper = {"C": c, "penalty": "l2", "scaler": "standard", "n_splits": n_splits}
    metadata: dict[str, Any] = {
        "kind": KIND,
        "version": content_version(data, interval, hyper),
        "features": list(FEATURES),
        "interval": interval,
        "symbols": sorted(set(data.symbols.tolist())),
        "first_ts": _iso(data.times[0]),
        "last_ts": _iso(data.times[-1]),
        "rows": len(data.y),
        "hyperparameters": hyper,
        "folds": [vars(f) for f in folds],
        "metrics": {
            **out_of_sample(folds),
            "in_sample_accuracy": float((pipeline.predict(data.X) == data.y).mean()),
        },
        "sklearn_version": sklearn.__version__,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    return DirectionModel(pipeline, metadata)


def content_version(data: TrainingSet, interval: str, hyper: Mapping[str, Any]) -> str:
    """A hash of everything the fit depends on: the same data and settings, the same version
    (so a rerun rewrites the same file and its predictions are not duplicated)."""
    digest = hashlib.sha256()
    header = {"kind": KIND, "features": FEATURES, "interval": interval, "hyper": dict(hyper)}
    digest.update(json.dumps(header, sort_keys=True).encode())
    digest.update(sklearn.__version__.encode())
    digest.update(np.ascontiguousarray(data.X, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(data.y, dtype=np.int64).tobytes())
    digest.update(data.times.astype("datetime64[ns]").astype(np.int64).tobytes())
    digest.update("\0".join(data.symbols.tolist()).encode())
    return digest.hexdigest()[:16]


def utc_times(values: pd.Series) -> np.ndarray:
    """Timestamps (aware or UTC-naive) as UTC datetime64[ns]."""
    index = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    return index.tz_convert(UTC).tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _iso(value: np.datetime64) -> str:
    return pd.Timestamp(value).tz_localize(UTC).isoformat()
