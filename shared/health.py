"""A minimal /healthz (red with a reason, notes beside), /readyz and /metrics from a daemon
thread."""

from __future__ import annotations

import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import services
from shared.errors import SettingsError
from shared.metrics import HEALTHY, READY
from shared.redaction import redact
from shared.settings import HealthSettings

logger = logging.getLogger(__name__)


def health_port(settings: HealthSettings, service: str) -> int:
    """HEALTH_BASE_PORT + the service's registered offset + 100 * HEALTH_REPLICA_INDEX.

    HEALTH_PORT, when set, names the port instead (0 lets the OS choose).
    """
    if settings.port is not None:
        return settings.port
    return services.by_name(service).health_port(settings.base_port, settings.replica_index)


class Health:
    """The reasons a service is red (green when there are none), and notes that keep it green.

    A note says what a green service does not do and why, e.g. an optional source disabled for
    want of its API key: nothing is broken, so nothing is red.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self._reasons: dict[str, str] = {}
        self._notes: dict[str, str] = {}
        # Why the service is not ready (/readyz); a service that never says so is ready.
        self._unready: dict[str, str] = {}
        self._lock = threading.Lock()
        HEALTHY.set(1)
        READY.set(1)

    def red(self, key: str, reason: str) -> None:
        """Turn red for `key` (logged once per change of reason).

        The reason is redacted: it is often an exception's text, which may repeat a URL with
        its query credentials, and /healthz is not a secret.
        """
        reason = redact(reason)
        with self._lock:
            changed = self._reasons.get(key) != reason
            self._reasons[key] = reason
            HEALTHY.set(0)
        if changed:
            logger.warning("health red: %s", reason)

    def green(self, key: str) -> None:
        with self._lock:
            removed = self._reasons.pop(key, None)
            HEALTHY.set(0 if self._reasons else 1)
        if removed is not None:
            logger.info("health recovered: %s", removed)

    def note(self, key: str, text: str) -> None:
        """Note `text` for `key` without turning red (logged once per change of text)."""
        text = redact(text)
        with self._lock:
            changed = self._notes.get(key) != text
            self._notes[key] = text
        if changed:
            logger.info("health note: %s", text)

    def clear_note(self, key: str) -> None:
        with self._lock:
            self._notes.pop(key, None)

    def not_ready(self, key: str, reason: str) -> None:
        """Not ready for `key` (/readyz 503): e.g. a consumer still joining its group.

        Separate from red: a member waiting for its assignment is healthy, only not serving yet.
        """
        with self._lock:
            self._unready[key] = reason
            READY.set(0)

    def ready(self, key: str) -> None:
        with self._lock:
            self._unready.pop(key, None)
            READY.set(0 if self._unready else 1)

    def readiness(self) -> tuple[bool, list[str]]:
        with self._lock:
            return not self._unready, list(self._unready.values())

    def snapshot(self) -> tuple[bool, list[str]]:
        with self._lock:
            return not self._reasons, list(self._reasons.values())

    def notes(self) -> list[str]:
        with self._lock:
            return list(self._notes.values())


class _Server(ThreadingHTTPServer):
    """A scraper that hangs up before its answer is written (a timeout, a cancelled probe) is
    routine: no traceback on stderr for it (socketserver prints one for every error)."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return
        logger.warning("health server: %r answering %s", error, client_address)


class HealthServer:
    """Serves /healthz and /metrics for one service until closed."""

    def __init__(self, health: Health, host: str, port: int) -> None:
        handler = _handler_for(health)
        try:
            self._server = _Server((host, port), handler)
        except OSError as exc:
            raise SettingsError(
                f"health port {host}:{port} for {health.service} is unavailable ({exc.strerror}); "
                "set HEALTH_BASE_PORT, HEALTH_PORT or HEALTH_REPLICA_INDEX"
            ) from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if self.path.startswith("/healthz"):
                ok, reasons = health.snapshot()
                body = json.dumps(
                    {
                        "service": health.service,
                        "status": "ok" if ok else "red",
                        "reasons": reasons,
                        "notes": health.notes(),
                    }
                ).encode()
                self._reply(200 if ok else 503, "application/json", body)
            elif self.path.startswith("/readyz"):
                ready, reasons = health.readiness()
                body = json.dumps(
                    {
                        "service": health.service,
                        "status": "ready" if ready else "not ready",
                        "reasons": reasons,
                    }
                ).encode()
                self._reply(200 if ready else 503, "application/json", body)
            elif self.path.startswith("/metrics"):
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest())
            else:
                self._reply(404, "text/plain", b"not found\n")

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return  # scraped every few seconds: not worth a log line

    return Handler
