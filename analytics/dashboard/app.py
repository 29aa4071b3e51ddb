"""The ASGI app: the page, plotly.js from the installed plotly package (no CDN), and the JSON the
page polls."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import Counter
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from analytics.dashboard.reader import DashboardReader
from analytics.dashboard.status import (
    ServiceHealth,
    series_freshness,
    series_slas,
)
from analytics.dashboard.view import (
    BadRequest,
    checked_series,
    series_list_payload,
    series_payload,
)
from shared.calendar import get_calendar
from shared.db import first_line
from shared.health import Health
from shared.settings import Settings

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
# plotly ships its bundle inside the Python package: the page works on a machine with no internet.
PLOTLY_JS = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
DB_HEALTH = "postgres"

REQUESTS_REJECTED = Counter(
    "dashboard_requests_rejected", "Page requests refused with a reason", ["reason"]
)
DB_ERRORS = Counter("dashboard_db_errors", "Page requests PostgreSQL could not answer")


def make_app(
    settings: Settings,
    reader: DashboardReader,
    health: Health,
    services_health: Callable[[], list[ServiceHealth]],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """The dashboard's routes over `reader` (its SQL) and `services_health` (the health panel)."""
    dashboard = settings.dashboard
    calendar = get_calendar(settings.market.exchange)

    def db_failed(exc: Exception) -> JSONResponse:
        DB_ERRORS.inc()
        reason = f"PostgreSQL did not answer: {first_line(exc)}"
        health.red(DB_HEALTH, reason)
        return JSONResponse({"error": reason}, status_code=503)

    def page(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    def plotly_js(_request: Request) -> Response:
        # Cached by the browser for a day: 4.8 MB once, not on every visit.
        return FileResponse(
            PLOTLY_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    def series_list(_request: Request) -> Response:
        try:
            series = reader.series_list()
        except (psycopg.Error, PoolTimeout) as exc:
            return db_failed(exc)
        health.green(DB_HEALTH)
        return JSONResponse(series_list_payload(series, dashboard.refresh_s))

    def view(request: Request) -> Response:
        try:
            symbol, interval = checked_series(
                request.query_params.get("symbol"), request.query_params.get("interval")
            )
        except BadRequest as exc:
            REQUESTS_REJECTED.labels("bad series").inc()
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            data, newest, active = reader.series(symbol, interval, dashboard.bars)
        except (psycopg.Error, PoolTimeout) as exc:
            return db_failed(exc)
        health.green(DB_HEALTH)
        at = now()
        slas = series_slas(interval, settings.freshness, settings.forecast.every)
        payload: dict[str, Any] = series_payload(
            data, active, series_freshness(newest, slas, calendar, at), services_health(), at
        )
        return JSONResponse(payload, headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/", page),
            Route("/assets/plotly.min.js", plotly_js),
            Route("/assets/dashboard.js", lambda _r: FileResponse(STATIC / "dashboard.js")),
            Route("/assets/dashboard.css", lambda _r: FileResponse(STATIC / "dashboard.css")),
            Route("/api/series", series_list),
            Route("/api/view", view),
        ]
    )
