"""The one polling framework of the producers: a loop that runs a plan.

The loop owns everything the producers do alike: one publisher and one delivery tracker per
process (a report that runs after the flush that gave up on it still lands in a live tracker),
the watermarks (advanced only to what Kafka confirmed, kept in memory while Postgres is away),
the API gate and per-key health, stop, and the poll schedule. A plan (producer/market/plan.py,
producer/news/plan.py, producer/macro/plan.py) says what to ask for, how to key it and how to
parse it, with its own settings group only (the plan's side: producer/plans.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Generic, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from producer.api_errors import ApiAuthError, NotFoundError
from producer.plans import Outlet, Plan, Poll, PollReport
from producer.poll_loop import RetryPolicy, run_polling
from producer.publisher import KafkaPublisher, PublishStoppedError
from producer.watermarks import Confirmed, DeliveryTracker, WatermarkStore
from shared.db import make_pool
from shared.errors import SourceError
from shared.health import Health
from shared.kafka import Topics, make_producer, topics_for
from shared.metrics import DROPPED
from shared.settings import Settings

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=PollReport)


class PollLoop(Generic[R]):
    """Runs a plan's polls in one process, on one publisher, until stopped."""

    def __init__(
        self,
        plan: Plan[R],
        *,
        service: str,
        publisher: KafkaPublisher,
        topics: Topics,
        pool: ConnectionPool,
        health: Health,
        stop: threading.Event,
    ) -> None:
        self.plan = plan
        self.outlet = Outlet(publisher, DeliveryTracker(), topics)
        self.health = health
        self.stop = stop
        self._store = WatermarkStore(pool, service)
        self._watermarks: dict[str, datetime] | None = None
        # Confirmed but not yet stored (Postgres was down): stored with the next poll.
        self._unstored: dict[str, Confirmed] = {}
        self._missing_logged: set[str] = set()

    def run(self, interval_s: float) -> None:
        """Poll every `interval_s` seconds until stop is set."""
        run_polling(self.poll, interval_s=interval_s, stop=self.stop)

    def poll(self) -> R:
        """Poll every key of the plan once, flush, store the plan's state, advance watermarks."""
        report = self.plan.new_report()
        # Late reports of earlier polls first: a failed message bounds its watermark again and
        # the plan sends it again.
        self.outlet.publisher.serve_reports()
        watermarks = self._load_watermarks()
        if watermarks is None:
            # Without watermarks everything would be sent again: wait for Postgres.
            report.failed["producer_state"] = "cannot read watermarks"
            return report
        poll = Poll(report, dict(watermarks), self.outlet)
        if not self.plan.prepare(poll, self.health):
            return report
        for key in self.plan.keys():
            gate = self.plan.gate
            if self.stop.is_set() or (gate is not None and not gate.open):
                break
            try:
                self.plan.poll_key(key, poll)
            except PublishStoppedError:
                break  # stopped while the local queue was full: what was sent counts
            except SourceError as exc:
                if self.stop.is_set():
                    break  # interrupted while backing off: not a source failure
                self._failed(key, exc, poll)
                continue
            self.health.green(self.plan.health_key(key))
        # Flush before reading the tracker: every report that can run has run after it.
        report.undelivered = self.outlet.publisher.flush()
        self.plan.finish(poll, self.health)
        self._advance(watermarks)
        self._report_kafka(report)
        for reason, count in report.dropped.items():
            DROPPED.labels(reason).inc(count)
        logger.info(
            "%s: %s%s",
            self.plan.what,
            report.summary(),
            f", failed {sorted(report.failed)}" if report.failed else "",
        )
        return report

    def _failed(self, key: str, exc: SourceError, poll: Poll[R]) -> None:
        gate = self.plan.gate
        if isinstance(exc, ApiAuthError) and gate is not None:
            gate.close(f"{gate.api} refused the API key, not calling {gate.api} again: {exc}")
            return
        if isinstance(exc, NotFoundError):
            if self.plan.not_found(key, exc, poll) and key not in self._missing_logged:
                self._missing_logged.add(key)
                logger.warning("nothing for %s: %s", key, exc)
            return
        poll.report.failed[key] = str(exc)
        # Live failures publish nothing more for this key and never fall back to recordings.
        self.health.red(self.plan.health_key(key), f"{self.plan.describe(key)}: {exc}")

    def _report_kafka(self, report: PollReport) -> None:
        failed = self.outlet.tracker.failed_keys()
        if not failed and not report.undelivered:
            self.health.green("kafka")
            return
        # Their watermarks stay before the first failed or pending message: sent again later.
        reasons = []
        if report.undelivered:
            reasons.append(f"{report.undelivered} message(s) not yet delivered to Kafka")
        if failed:
            reasons.append(f"delivery failed for {failed}")
        self.health.red("kafka", "; ".join(reasons))

    def _load_watermarks(self) -> dict[str, datetime] | None:
        """Read once per process; afterwards the loop's own copy is the truth."""
        if self._watermarks is None:
            try:
                self._watermarks = self._store.load()
            except psycopg.Error as exc:  # Postgres unreachable: retried next poll
                self.health.red("producer_state", f"cannot read watermarks: {exc}")
                return None
            self.health.green("producer_state")
        return self._watermarks

    def _advance(self, watermarks: dict[str, datetime]) -> None:
        """Store confirmed watermarks (GREATEST in SQL); keep them for the next poll on failure."""
        confirmed = self.outlet.tracker.confirmed()
        self.outlet.tracker.forget(confirmed)
        for key, mark in confirmed.items():
            watermarks[key] = max(mark.ts, watermarks.get(key, mark.ts))
            held = self._unstored.get(key)
            self._unstored[key] = mark if held is None or mark.ts >= held.ts else held
        try:
            self._store.advance(self._unstored)
        except psycopg.Error as exc:  # Postgres unreachable: delivered stays delivered
            self.health.red("producer_state", f"cannot store watermarks: {exc}")
            return
        self._unstored.clear()
        self.health.green("producer_state")


# Builds a producer's plan on the process's pool (its own tables) and the settings.
PlanFactory = Callable[[Settings, ConnectionPool, Health, threading.Event], Plan[R]]


def run_plan(
    settings: Settings,
    service: str,
    make_plan: PlanFactory[R],
    health: Health,
    stop: threading.Event,
    *,
    interval_s: float,
    once: bool,
) -> R | None:
    """Poll every `interval_s` until `stop` is set; with `once`, poll once and return the
    report."""
    if once:
        return poll_plan_once(settings, service, make_plan, health, stop)
    with _process_loop(settings, service, make_plan, health, stop) as loop:
        loop.run(interval_s)
    return None


def poll_plan_once(
    settings: Settings,
    service: str,
    make_plan: PlanFactory[R],
    health: Health,
    stop: threading.Event,
) -> R:
    """One poll of a new process's loop: flushed, watermarks advanced, reported."""
    with _process_loop(settings, service, make_plan, health, stop) as loop:
        return loop.poll()


@contextmanager
def _process_loop(
    settings: Settings,
    service: str,
    make_plan: PlanFactory[R],
    health: Health,
    stop: threading.Event,
) -> Iterator[PollLoop[R]]:
    """One Postgres pool and one Kafka producer for the process (flushed on exit)."""
    pool = make_pool(settings.postgres, service)
    try:
        with KafkaPublisher(make_producer(settings.kafka, service), stop=stop) as publisher:
            yield PollLoop(
                make_plan(settings, pool, health, stop),
                service=service,
                publisher=publisher,
                topics=topics_for(settings.kafka),
                pool=pool,
                health=health,
                stop=stop,
            )
    finally:
        pool.close()


def retry_policy(settings: Settings, stop: threading.Event) -> RetryPolicy:
    """The one retry around each API request (API_RETRY_ATTEMPTS, API_RETRY_BACKOFF_S)."""
    return RetryPolicy(stop, settings.api.api_retry_attempts, settings.api.api_retry_backoff_s)
