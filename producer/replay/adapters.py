"""requests transport adapters: answer from recorded files (replay), or save responses (record)."""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests import PreparedRequest, Response
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.exceptions import ReadTimeout
from requests.structures import CaseInsensitiveDict

from producer.replay.manifest import (
    CRUMB_PATH,
    FRED_HOST,
    YAHOO_HANDSHAKE_HOSTS,
    Manifest,
    describe,
)
from producer.replay.overlay import INJECTED_HEADER, Overlay

logger = logging.getLogger(__name__)

# Only these query values go into a recorded file's name (never api_key, token or crumb).
_NAMED_QUERY_KEYS = ("interval", "period1", "period2", "range", "series_id", "offset")
_UNSAFE = re.compile(r"[^A-Za-z0-9.=-]+")


def _response(
    request: PreparedRequest, status: int, body: bytes, headers: Mapping[str, str]
) -> Response:
    response = Response()
    response.request = request
    response.url = request.url or ""
    response.status_code = status
    response.reason = "OK" if status < 400 else "Replayed error"
    response.headers = CaseInsensitiveDict({"Content-Length": str(len(body)), **headers})
    response.encoding = "utf-8"
    response.raw = io.BytesIO(body)
    response._content = body  # the whole body is known: no stream to read
    return response


def _read_timeout(timeout: Any) -> float | None:
    if isinstance(timeout, tuple):
        return timeout[1]
    return timeout if isinstance(timeout, int | float) else None


class ReplayAdapter(BaseAdapter):
    """Answers every https:// request from the overlay first, then from the recorded files."""

    def __init__(self, manifest: Manifest, overlay: Overlay | None = None) -> None:
        super().__init__()
        self.manifest = manifest
        self.overlay = overlay

    def send(  # type: ignore[override]
        self, request: PreparedRequest, stream: bool = False, timeout: Any = None, **_: Any
    ) -> Response:
        method, url = request.method or "GET", request.url or ""
        injected = self.overlay.take(method, url) if self.overlay else None
        if injected is not None:
            logger.warning(
                "replay: INJECTED %d for %s (overlay %s)",
                injected.status,
                describe(method, url),
                injected.entry,
            )
            limit = _read_timeout(timeout)
            if limit is not None and injected.delay_s >= limit:
                time.sleep(limit)
                raise ReadTimeout(f"injected delay {injected.delay_s}s exceeds timeout {limit}s")
            time.sleep(injected.delay_s)
            headers = {**injected.headers, INJECTED_HEADER: "1"}
            return _response(request, injected.status, injected.body, headers)
        answer = self.manifest.answer(method, url)
        headers = {"Content-Type": answer.content_type}
        if answer.source is not None:
            headers["X-Replay-File"] = answer.source.name
        return _response(request, answer.status, answer.body, headers)

    def close(self) -> None:
        """Nothing to release: no connections."""


class RecordingAdapter(HTTPAdapter):
    """Forwards to the real transport and saves every data response under `folder`.

    The layout is one body per file under a folder per provider, the layout the replay index
    reads (it reads content, so names are only for people). The cookie/crumb handshake is not
    saved: it holds no data, and the crumb is a session credential.
    """

    def __init__(self, folder: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.folder = folder

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        response = super().send(request, *args, **kwargs)
        parts = urlsplit(request.url or "")
        if parts.netloc.lower() in YAHOO_HANDSHAKE_HOSTS or parts.path == CRUMB_PATH:
            return response
        target = self._target(parts.netloc.lower(), parts.path, parts.query, response)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(response.content)
        logger.debug(
            "recorded %s -> %s", describe(request.method or "GET", request.url or ""), target
        )
        return response

    def _target(self, host: str, path: str, query: str, response: Response) -> Path:
        provider = "yahoo" if host.endswith("yahoo.com") else "fred" if host == FRED_HOST else host
        values = parse_qs(query)
        named = [f"{k}={values[k][0]}" for k in _NAMED_QUERY_KEYS if k in values]
        stem = _UNSAFE.sub("_", "_".join([path.strip("/"), *named])).strip("_")
        recorded = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        is_json = "json" in response.headers.get("Content-Type", "")
        return (
            self.folder
            / provider
            / f"{stem}_{response.status_code}_{recorded}.{'json' if is_json else 'txt'}"
        )
