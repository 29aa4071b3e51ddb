"""The shared poll loop: rate limiter, retry with backoff on 429/5xx, stop; the client's errors."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from producer.data_source import replay_session
from producer.poll_loop import RateLimiter, call_with_retry, run_polling
from producer.replay.index import ReplayIndex
from producer.replay.overlay import inject
from producer.yahoo_client import YahooClient
from shared.errors import RetryableError

START, END = datetime(2020, 1, 2, 14, 30, tzinfo=UTC), datetime(2020, 12, 31, 14, 31, tzinfo=UTC)


@pytest.fixture(scope="module")
def index(recordings: Path) -> ReplayIndex:
    return ReplayIndex.scan(recordings / "yahoo")


def client_with(index: ReplayIndex, overlay: Path) -> YahooClient:
    return YahooClient(
        replay_session(index, overlay), "America/New_York", timeout_s=5, prepost=False
    )


def test_rate_limiter_spaces_calls_evenly() -> None:
    now = [100.0]
    waits: list[float] = []

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout or 0.0)
            now[0] += timeout or 0.0
            return False

    limiter = RateLimiter(30, clock=lambda: now[0])
    stop = Stop()
    assert all(limiter.acquire(stop) for _ in range(3))
    assert waits == [2.0, 2.0]  # 30 a minute: one every 2 s, the first at once


def test_rate_limiter_gives_up_when_stopped() -> None:
    stop = threading.Event()
    limiter = RateLimiter(1)
    assert limiter.acquire(stop)
    stop.set()
    assert not limiter.acquire(stop)


def test_429_is_retried_with_backoff(index: ReplayIndex, tmp_path: Path) -> None:
    # yfinance retries a failed request once itself: two 429s make one failed fetch.
    inject(
        tmp_path,
        "rate-limited",
        path="/v8/finance/chart/AAPL",
        responses=[{"status": 429, "body": "Too Many Requests"}] * 2,
    )
    client = client_with(index, tmp_path)
    with pytest.raises(RetryableError, match="429"):
        client.fetch("AAPL", "1d", START, END)
    inject(
        tmp_path,
        "rate-limited",
        path="/v8/finance/chart/AAPL",
        responses=[{"status": 429, "body": "Too Many Requests"}] * 2,
    )
    fetch = call_with_retry(
        lambda: client.fetch("AAPL", "1d", START, END),
        limiter=RateLimiter(6000),
        stop=threading.Event(),
        what="AAPL chart",
        backoff_s=0.01,
    )
    assert fetch.chart is not None and len(fetch.chart["timestamp"]) == 253
    assert not (tmp_path / "rate-limited.json").exists()


def test_server_errors_are_retryable_and_give_up_after_the_attempts(
    index: ReplayIndex, tmp_path: Path
) -> None:
    inject(
        tmp_path,
        "down",
        path="/v8/finance/chart/AAPL",
        responses=[{"status": 503, "body": "<html>Will be right back</html>"}] * 10,
    )
    client = client_with(index, tmp_path)
    calls = []

    def fetch() -> object:
        calls.append(1)
        return client.fetch("AAPL", "1d", START, END)

    with pytest.raises(RetryableError):
        call_with_retry(
            fetch,
            limiter=RateLimiter(6000),
            stop=threading.Event(),
            what="x",
            attempts=3,
            backoff_s=0.01,
        )
    assert len(calls) == 3


def test_stop_interrupts_the_backoff() -> None:
    stop = threading.Event()
    calls = []

    def failing() -> None:
        calls.append(1)
        stop.set()
        raise RetryableError("HTTP 503")

    with pytest.raises(RetryableError):
        call_with_retry(failing, limiter=RateLimiter(6000), stop=stop, what="x", backoff_s=60)
    assert len(calls) == 1


def test_run_polling_survives_a_failing_poll() -> None:
    stop = threading.Event()
    polls = []

    def poll() -> None:
        polls.append(1)
        if len(polls) == 1:
            raise RuntimeError("boom")
        stop.set()

    run_polling(poll, interval_s=0.01, stop=stop)
    assert len(polls) == 2
