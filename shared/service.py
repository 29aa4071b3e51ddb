"""The thin entry point every service shares: settings, logging, signals, health, run(stop)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable

from shared.errors import PipelineError, SettingsError
from shared.health import Health, HealthServer, health_port
from shared.settings import Settings, load_settings

logger = logging.getLogger(__name__)

ServiceRun = Callable[[Settings, threading.Event, Health], None]


def configure_logging(service: str) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # pandas 3 makes yfinance warn about `inplace` on every call: not ours to fix, nor to flood.
    warnings.filterwarnings("ignore", module="yfinance")


def run_service(service: str, run: ServiceRun) -> int:
    """Run `run(settings, stop, health)` until it returns or SIGTERM/SIGINT sets `stop`.

    `service` is a name registered in shared/services.py (it gives the health port).
    Returns the process exit code: 0 on a clean stop, 2 on a settings problem (one line).
    """
    configure_logging(service)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        # Only set the event: the loop finishes its batch and closes clients in `finally`.
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server: HealthServer | None = None
    try:
        settings = load_settings()
        health = Health(service)
        server = HealthServer(health, settings.health.host, health_port(settings.health, service))
        logger.info("started; /healthz and /metrics on %s:%d", settings.health.host, server.port)
        run(settings, stop, health)
    except SettingsError as exc:
        print(f"{service}: {exc}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        logger.error("stopped: %s", exc)
        return 1
    finally:
        if server is not None:
            server.close()
    logger.info("stopped cleanly")
    return 0
