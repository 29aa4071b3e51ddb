"""The thin entry point every service shares: argv, settings, logging, signals, health, run."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from shared import hot_path, services
from shared.errors import PipelineError, SettingsError
from shared.health import Health, HealthServer, health_port
from shared.redaction import install_log_redaction
from shared.settings import load_settings

logger = logging.getLogger(__name__)

ServiceRun = Callable[..., None]  # run(settings, stop, health, **options from argv)

# Python's cyclic GC runs a young collection every 700 net container allocations. A consumer
# copies its series' states every batch (thousands of containers, all alive until the commit),
# so it ran young collections many times a second, each walking the whole batch, and a full
# collection every few seconds: 5-12 ms and 35-55 ms pauses, measured with gc.callbacks in the
# analytics consumer at 2,000 bars/s, which found nothing to free in almost all of them
# (reference counting frees the old states). Those pauses were the analytics consumer's alert
# latency tail (bench.alerts without the forecaster: p99 92-113 ms at the default, 49 ms at
# this threshold, three runs each). Cycles are still collected, less often.
GC_YOUNG_THRESHOLD = 100_000


def tune_gc() -> None:
    """Collect cycles less often (see GC_YOUNG_THRESHOLD); the older generations keep theirs."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def _hot_path_state() -> str:
    state = hot_path.state()
    if state == "compiled":
        return "compiled (mypyc)"
    # Not an error (the same code runs), but not the speed the README's figures were measured at.
    return f"{state} (`make setup` compiles it: about a third less CPU a bar)"


def configure_logging(service: str, level: str = "INFO") -> None:
    """Every line to stderr, carrying the service's name (LOG_LEVEL: `level`)."""
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # API keys travel in URLs (FRED's api_key) that error messages repeat: mask them in every line.
    install_log_redaction()
    # pandas 3 makes yfinance warn about `inplace` on every call: not ours to fix, nor to flood.
    warnings.filterwarnings("ignore", module="yfinance")


def service_parser(service: str) -> argparse.ArgumentParser:
    """`python -m MODULE [--help]` of a registered service; add the service's own options."""
    registered = services.by_name(service)
    return argparse.ArgumentParser(
        prog=f"python -m {registered.module}",
        description=f"{registered.name}: {registered.description}.",
        epilog=(
            "Settings come from environment variables and .env (every one, with its default, in "
            ".env.example; LOG_LEVEL=DEBUG for more detail). /healthz and /metrics on "
            f"HEALTH_BASE_PORT + {registered.port_offset}. A wrong setting stops the service with "
            "one line naming it (exit code 2)."
        ),
    )


def run_service(
    service: str,
    run: ServiceRun,
    argv: Sequence[str] | None = None,
    parser: argparse.ArgumentParser | None = None,
) -> int:
    """Run `run(settings, stop, health, **options)` until it returns or SIGTERM/SIGINT sets `stop`.

    `service` is a name registered in shared/services.py (it gives the health port and the
    `--help` text). `argv` is parsed by `parser` (default: service_parser, no options) before
    anything else: `--help` exits 0 without reading settings or connecting anywhere; each option
    reaches `run` as a keyword argument. Returns the process exit code: 0 on a clean stop, 2 on a
    settings problem (one line).
    """
    options: dict[str, Any] = vars((parser or service_parser(service)).parse_args(argv))
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        # Only set the event: the loop finishes its batch and closes clients in `finally`.
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    tune_gc()
    server: HealthServer | None = None
    try:
        settings = load_settings()
        configure_logging(service, settings.log.log_level)
        logger.debug(
            "settings: Kafka %s, %s, DATA_SOURCE=%s",
            settings.kafka.bootstrap_servers,
            settings.postgres.describe(),  # never the password
            settings.source.data_source,
        )
        health = Health(service)
        server = HealthServer(health, settings.health.host, health_port(settings.health, service))
        logger.info(
            "started; /healthz and /metrics on %s:%d; hot path %s",
            settings.health.host,
            server.port,
            _hot_path_state(),
        )
        run(settings, stop, health, **options)
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
