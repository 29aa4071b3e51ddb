"""What the ml commands share on the command line: `name=value` lines, time and symbol options,
the models folder."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path

# Under .local/, which git ignores.
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[1] / ".local" / "models"


def emit(name: str, value: object) -> None:
    """Print one `name=value` line (bench.harness.emit's format; ml does not import bench)."""
    if isinstance(value, float):
        value = f"{value:.6g}"
    print(f"{name}={value}", flush=True)


def utc_time(text: str) -> datetime:
    """An option's time: a date (00:00 UTC, how daily bars are keyed) or an ISO 8601 time with
    its UTC offset."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a UTC offset, e.g. {text}+00:00")
    return moment


def symbol_list(text: str) -> list[str]:
    """Comma-separated symbols (the option may also be repeated)."""
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise argparse.ArgumentTypeError("no symbol given")
    return symbols
