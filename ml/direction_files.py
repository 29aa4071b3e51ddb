"""Direction model files: `direction-VERSION.joblib`, the fitted pipeline beside its metadata."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import joblib

from ml.direction import KIND, DirectionModel
from ml.features import FEATURES

FILE_PREFIX = "direction-"


def save(model: DirectionModel, models_dir: Path) -> Path:
    """Write `direction-VERSION.joblib` (atomically: a reader never sees half a file)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / f"{FILE_PREFIX}{model.version}.joblib"
    handle, temporary = tempfile.mkstemp(dir=models_dir, suffix=".tmp")
    os.close(handle)
    try:
        joblib.dump({"pipeline": model.pipeline, "metadata": model.metadata}, temporary)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def load(path: Path) -> DirectionModel:
    """A model file written by `save`. joblib unpickles: load only files you made."""
    stored = joblib.load(path)
    if not isinstance(stored, dict) or stored.get("metadata", {}).get("kind") != KIND:
        raise ValueError(f"{path} is not a {KIND} model file")
    if stored["metadata"]["features"] != list(FEATURES):
        raise ValueError(f"{path} was trained on other features: {stored['metadata']['features']}")
    return DirectionModel(stored["pipeline"], stored["metadata"])


def newest(models_dir: Path) -> Path:
    """The most recently written model file in `models_dir`."""
    files = sorted(models_dir.glob(f"{FILE_PREFIX}*.joblib"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no {FILE_PREFIX}*.joblib model in {models_dir}")
    return files[-1]
