"""The poll loop producers share: interval, one rate limiter, retry with backoff, stop event."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_random_exponential,
)

from shared.errors import RetryableError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RateLimiter:
    """At most `per_minute` calls a minute, evenly spaced; one instance for the whole process."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._spacing = 60.0 / per_minute
        self._clock = clock
        self._next = clock()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for the next slot; False when `stop` was set while waiting."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._spacing
        return not stop.wait(slot - now) if slot > now else not stop.is_set()


def call_with_retry(
    call: Callable[[], T],
    *,
    limiter: RateLimiter | None,
    stop: threading.Event,
    what: str,
    attempts: int = 5,
    backoff_s: float = 1.0,
    max_backoff_s: float = 60.0,
) -> T:
    """`call()` within the rate limit, retried on RetryableError (HTTP 429, 5xx, timeouts).

    Backoff is exponential with full jitter (tenacity's wait_random_exponential), interrupted
    by `stop`; after the last attempt the RetryableError propagates to the caller. `limiter`
    None: the call takes its API's slot itself (the Finnhub and FRED clients, one per request).
    """

    def attempt() -> T:
        if limiter is not None and not limiter.acquire(stop):
            raise RetryableError(f"{what}: stopping")
        return call()

    def log_retry(state: RetryCallState) -> None:
        wait = state.next_action.sleep if state.next_action else 0.0
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "%s: attempt %d failed (%s); retrying in %.1fs", what, state.attempt_number, error, wait
        )

    retrying = Retrying(
        retry=retry_if_exception_type(RetryableError),
        wait=wait_random_exponential(multiplier=backoff_s, max=max_backoff_s),
        stop=stop_after_attempt(attempts) | stop_when_event_set(stop),
        sleep=stop.wait,
        before_sleep=log_retry,
        reraise=True,
    )
    return retrying(attempt)


@dataclass(frozen=True)
class RetryPolicy:
    """The one retry around each API request (API_RETRY_ATTEMPTS, API_RETRY_BACKOFF_S)."""

    stop: threading.Event
    attempts: int = 5
    backoff_s: float = 1.0


def with_retry(call: Callable[[], T], policy: RetryPolicy, what: str) -> T:
    """`call()` retried by `policy`, for a client that takes its API's rate-limit slot itself
    (the Finnhub and FRED clients, one slot per request)."""
    return call_with_retry(
        call,
        limiter=None,
        stop=policy.stop,
        what=what,
        attempts=policy.attempts,
        backoff_s=policy.backoff_s,
    )


def run_polling(poll: Callable[[], object], *, interval_s: float, stop: threading.Event) -> None:
    """Call `poll()` every `interval_s` seconds until `stop` is set.

    `poll` owns its errors (health, counters); anything it lets escape is logged here and the
    loop goes on, because one bad poll must not end a producer.
    """
    while not stop.is_set():
        started = time.monotonic()
        try:
            poll()
        except Exception:  # the loop boundary: log and keep polling
            logger.exception("poll failed")
        stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
