"""The API producers live: without their key disabled, green with a note, never fabricate; with
keys but no internet (refused, timed out), the keys never appear in a log, a health body or an
error."""

from __future__ import annotations

import json
import socket
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from producer.data_source import ObservedSession
from producer.finnhub_api import FinnhubApi
from producer.fred_client import FredClient
from producer.poll_loop import RateLimiter
from shared.errors import RetryableError
from shared.kafka import Topics
from shared.settings import KafkaSettings
from tests.integration.bar_stream import end_offsets
from tests.integration.processes import ServiceProcess, assert_api_idles, free_port, wait_for


@pytest.mark.parametrize(
    ("module", "key", "topic"),
    [
        ("producer.news", "FINNHUB_API_KEY", "news_articles"),
        ("producer.macro", "FRED_API_KEY", "macro_observations"),
    ],
)
def test_live_without_a_key_is_disabled_green_and_idles_without_fabricating(
    module: str,
    key: str,
    topic: str,
    service_env: dict[str, str],
    topics: Topics,
    kafka_settings: KafkaSettings,
    tmp_path: Path,
) -> None:
    assert_api_idles(
        module,
        service_env,
        tmp_path,
        f"disabled: no {key}",
        red=False,
        DATA_SOURCE="live",
        FINNHUB_API_KEY="",
        FRED_API_KEY="",
    )
    assert all(end == 0 for end in end_offsets(kafka_settings, getattr(topics, topic)).values())


# Recognisable fake keys: any trace of them in a log line, a health body or an exception's text
# is a leak (the real ones are as secret).
FRED_KEY = "fakefredkey0123456789abcdef0123"
FINNHUB_KEY = "FAKEFINNHUBKEY0123456789"
KEYS = {"FRED_API_KEY": FRED_KEY, "FINNHUB_API_KEY": FINNHUB_KEY}


@contextmanager
def unreachable_proxy(kind: str) -> Iterator[str]:
    """An HTTPS proxy URL standing for a machine without internet: `refused` (nothing listens)
    or `timeout` (a listener that never answers). requests honours HTTPS_PROXY, so the clients'
    real transport fails as it would offline, and no request leaves this machine."""
    if kind == "refused":
        yield f"http://127.0.0.1:{free_port()}"
        return
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"


def offline_env(service_env: dict[str, str], proxy: str) -> dict[str, str]:
    env = {k: v for k, v in service_env.items() if k.upper() not in ("NO_PROXY", "ALL_PROXY")}
    return {
        **env,
        **KEYS,
        "DATA_SOURCE": "live",
        "HTTPS_PROXY": proxy,
        "HTTP_PROXY": proxy,
        "HTTP_TIMEOUT_S": "0.3",
        "API_RETRY_BACKOFF_S": "0.05",  # every attempt is made, without the minutes of backoff
    }


def test_keys_never_appear_in_logs_health_or_errors_when_the_apis_are_unreachable(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    with unreachable_proxy("refused") as refused, unreachable_proxy("timeout") as silent:
        runs = [
            ("producer.macro", refused, "FRED"),
            ("producer.macro", silent, "FRED"),
            ("producer.news", silent, "Finnhub"),
        ]
        services = [
            ServiceProcess(module, offline_env(service_env, proxy), tmp_path).start()
            for module, proxy, _ in runs
        ]
        try:
            for service, (module, _, api) in zip(services, runs, strict=True):
                # Red once the retries are spent: the reason is the redacted transport error.
                wait_for(lambda s=service: s.healthz()[0] == 503, 60, f"{module} to turn red")
                status, body = service.healthz()
                assert any(api in reason for reason in body["reasons"])
                health_text = json.dumps(body)
                for key in KEYS.values():
                    assert key not in health_text
        finally:
            codes = [service.stop() for service in services]
    assert codes == [0, 0, 0]
    for service in services:
        log = service.log()
        assert "attempt 1 failed" in log  # the failures were logged, retried, then red
        for key in KEYS.values():
            assert key not in log
    macro_logs = services[0].log() + services[1].log()
    # The URL with FRED's key was in those messages: masked, not dropped.
    assert "api_key=***" in macro_logs
    assert "ProxyError" in services[0].log()
    assert "Timeout" in services[1].log() or "timed out" in services[1].log()


@pytest.mark.parametrize("kind", ["refused", "timeout"])
def test_client_errors_carry_no_key(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exception a client raises, printed as a traceback would print it."""
    with unreachable_proxy(kind) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        stop = threading.Event()
        fred = FredClient(
            ObservedSession(), FRED_KEY, limiter=RateLimiter(6000), stop=stop, timeout_s=0.3
        )
        finnhub = FinnhubApi(
            ObservedSession(), FINNHUB_KEY, limiter=RateLimiter(6000), stop=stop, timeout_s=0.3
        )
        errors: list[BaseException] = []
        for call in (lambda: fred.series("GDP"), lambda: finnhub.company_news("AAPL", "a", "b")):
            with pytest.raises(RetryableError) as caught:
                call()
            errors.append(caught.value)
    texts = ["".join(traceback.format_exception(error)) for error in errors]
    if kind == "refused":  # a refused connection's message repeats the URL: masked
        assert "api_key=***" in texts[0]
    for text in texts:
        assert FRED_KEY not in text and FINNHUB_KEY not in text
