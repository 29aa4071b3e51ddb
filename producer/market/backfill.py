"""`python -m producer.market backfill --days N`: extend each series' history backwards.

The polls only ever move forwards from a series' watermark, so raising MARKET_HISTORY_DAYS later
changes nothing for a series that has one. The backfill publishes the closed bars of the last N
days that are older than the oldest bar the producer delivered (producer_history), on the same
split basis rule as the polls (Yahoo's whole-life split list), then runs
`python -m analytics.recompute` for each series it extended: the analytics consumer sees those
bars as late (older than its newest) and never feeds them, the recompute rebuilds the series
from price_bars_adjusted. The recompute is a separate process (a producer imports no other
service's package); it waits until storage has the newest backfilled bar.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess  # noqa: S404 - runs this interpreter's own analytics.recompute
import sys
import threading
from collections.abc import Sequence

from producer.market.parsing import SERVICE
from producer.market.plan import MarketReport
from producer.market.service import market_loop
from shared.db import make_pool
from shared.errors import SettingsError
from shared.health import Health
from shared.kafka import make_producer
from shared.service import configure_logging
from shared.settings import Settings, load_settings

logger = logging.getLogger("producer.market.backfill")


def backfill_once(settings: Settings, days: int, stop: threading.Event) -> MarketReport:
    """Publish every symbol's older history of the last `days` days, flush, and report."""
    producer = make_producer(settings.kafka, f"{SERVICE}.backfill")
    pool = make_pool(settings.postgres, f"{SERVICE}.backfill")
    try:
        loop = market_loop(
            settings,
            producer=producer,
            pool=pool,
            health=Health(SERVICE),
            stop=stop,
            backfill_days=days,
        )
        return loop.poll()
    finally:
        pool.close()


def recompute(report: MarketReport, wait_s: float) -> list[str]:
    """Run analytics.recompute for each series the backfill extended; the series it failed for."""
    failed = []
    for key, newest in sorted(report.backfilled.items()):
        symbol, interval = key.split("|", 1)
        command = [
            sys.executable,
            "-m",
            "analytics.recompute",
            "--symbol",
            symbol,
            "--interval",
            interval,
            "--wait-for-bar",
            newest.isoformat(),
            "--wait-s",
            str(wait_s),
        ]
        logger.info("%s: recomputing indicators (%s)", key, " ".join(command[1:]))
        if subprocess.run(command, check=False).returncode != 0:  # noqa: S603 - fixed argv
            failed.append(key)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m producer.market backfill",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--days", type=int, required=True, help="how far back history should reach (days)"
    )
    parser.add_argument(
        "--no-recompute", action="store_true", help="publish only; run analytics.recompute later"
    )
    parser.add_argument(
        "--wait-s",
        type=float,
        default=300.0,
        help="how long each recompute waits for storage to catch up (default 300)",
    )
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"{SERVICE} backfill: {exc}", file=sys.stderr)
        return 2
    configure_logging(SERVICE, settings.log.log_level)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    report = backfill_once(settings, args.days, stop)
    status = 0
    if report.failed or report.undelivered:
        logger.error(
            "backfill incomplete: failed %s, %d undelivered (run it again: it resumes)",
            sorted(report.failed),
            report.undelivered,
        )
        status = 1
    if not args.no_recompute and not stop.is_set():
        failed = recompute(report, args.wait_s)
        if failed:
            logger.error("recompute failed for %s", ", ".join(failed))
            status = 1
    return status
