"""Injected response sequences for fault tests (REPLAY_OVERLAY_DIR), consumed in order.

An entry is a JSON file in the overlay folder:
    {"method": "GET", "host": "query2.finance.yahoo.com", "path": "/v8/finance/chart/AAPL",
     "query": {"interval": "1d"},
     "responses": [{"status": 429, "body": "Too Many Requests", "delay_s": 0}, …]}
`host` and `query` are optional (query matches as a subset); `body` is text or any JSON value.
A matching request takes the entry's first response and the file is rewritten without it (and
deleted once empty), so what is left to inject is always visible in the folder, across restarts.
After the sequence, requests fall through to the recorded data.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

INJECTED_HEADER = "X-Replay-Injected"


@dataclass(frozen=True)
class Injected:
    """One injected response: never recorded data, always marked as injected."""

    status: int
    body: bytes
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    entry: str = ""


class Overlay:
    """The overlay folder; entries are read on every request so tests can add them at any time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def take(self, method: str, url: str) -> Injected | None:
        """Consume the next injected response for this request, if an entry matches."""
        with self._lock:
            for path in sorted(self.folder.glob("*.json")):
                entry = json.loads(path.read_text(encoding="utf-8"))
                if not entry.get("responses") or not _matches(entry, method, url):
                    continue
                first, rest = entry["responses"][0], entry["responses"][1:]
                if rest:
                    _write_atomically(path, {**entry, "responses": rest})
                else:
                    path.unlink()
                return Injected(
                    status=int(first["status"]),
                    body=_body_bytes(first.get("body", "")),
                    delay_s=float(first.get("delay_s", 0.0)),
                    headers={str(k): str(v) for k, v in first.get("headers", {}).items()},
                    entry=path.name,
                )
        return None


def inject(
    folder: Path,
    name: str,
    *,
    path: str,
    responses: list[dict[str, Any]],
    method: str = "GET",
    host: str | None = None,
    query: dict[str, str] | None = None,
) -> Path:
    """Write an overlay entry `name` (tests use this to script faults)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.json"
    entry = {"method": method, "host": host, "path": path, "query": query or {}}
    _write_atomically(target, {**entry, "responses": responses})
    return target


def _matches(entry: dict[str, Any], method: str, url: str) -> bool:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return (
        entry.get("method", "GET").upper() == method.upper()
        and entry.get("host") in (None, parts.netloc.lower())
        # Entries name the path as people write it (/v8/finance/chart/^GSPC), the wire quotes it.
        and entry.get("path") in (parts.path, unquote(parts.path))
        and all(query.get(k) == str(v) for k, v in (entry.get("query") or {}).items())
    )


def _body_bytes(body: Any) -> bytes:
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def _write_atomically(path: Path, entry: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(entry, indent=1), encoding="utf-8")
    os.replace(temporary, path)
