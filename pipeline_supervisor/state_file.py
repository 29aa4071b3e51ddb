"""The supervisor's view of its children (state, restarts, pid) in a small JSON file, for the
status screen: restarts are only known to the process that does them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from shared.settings import HealthSettings, StackSettings, project_root


def state_path(stack: StackSettings, health: HealthSettings) -> Path:
    """One file per pipeline: `make run` and the tests' pipelines use other health ports."""
    base = stack.local_stack_dir
    base = base if base.is_absolute() else project_root() / base
    return base / f"supervisor-{health.base_port + 100 * health.replica_index}.json"


def write_state(path: Path, services: dict[str, dict[str, Any]]) -> None:
    """Replace the file atomically (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"at": time.time(), "pid": os.getpid(), "services": services}))
    tmp.replace(path)


def read_state(path: Path) -> tuple[float, dict[str, dict[str, Any]]] | None:
    """(written at, services) or None when there is no readable file (no supervisor: compose)."""
    try:
        data = json.loads(path.read_text())
        return float(data["at"]), dict(data["services"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
