"""Wires the dashboard: settings → the read-only pool → the ASGI app → uvicorn on DASHBOARD_PORT,
until the stop event."""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn

from analytics.dashboard.app import make_app
from analytics.dashboard.reader import DashboardReader
from analytics.dashboard.status import services_health
from shared import services
from shared.db import check_database
from shared.errors import PipelineError, SettingsError
from shared.health import Health
from shared.settings import Settings

logger = logging.getLogger(__name__)

SERVICE = services.ANALYTICS_DASHBOARD.name
STOP_GRACE_S = 10.0


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is one clear settings line (uvicorn
    would log it and exit its thread)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SettingsError(
            f"dashboard port {host}:{port} is unavailable ({exc.strerror}); "
            "set DASHBOARD_HOST / DASHBOARD_PORT"
        ) from None
    sock.listen(128)
    return sock


def run(settings: Settings, stop: threading.Event, health: Health) -> None:
    dashboard = settings.dashboard
    postgres = dashboard.login(settings.postgres)
    try:
        check_database(postgres)
    except SettingsError as exc:
        raise SettingsError(
            f"{exc} (it logs in as {postgres.user}, DASHBOARD_READ_AS={dashboard.read_as}; "
            "`python -m db bootstrap` creates the reader)"
        ) from None
    sock = bind(dashboard.host, dashboard.port)
    reader = DashboardReader(postgres)
    every = services.all_services()
    app = make_app(
        settings,
        reader,
        health,
        lambda: services_health(every, dashboard.health_url, settings.health),
    )
    # Signals stay ours (shared.service): uvicorn runs in a thread and is told to exit.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="dashboard-http", daemon=True
    )
    thread.start()
    host, port = sock.getsockname()[:2]
    logger.info("serving http://%s:%d/ as %s", host, port, postgres.user)
    try:
        while not stop.wait(0.5):
            if not thread.is_alive():
                raise PipelineError(f"the dashboard's web server on {host}:{port} stopped")
    finally:
        server.should_exit = True
        thread.join(STOP_GRACE_S)
        sock.close()
        reader.close()
