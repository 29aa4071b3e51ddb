"""Credentials masked in text and in every log record a handler writes."""

from __future__ import annotations

import io
import logging

import pytest

from producer.api_errors import ApiAuthError, NotFoundError, error_for_status
from shared.errors import RetryableError, SourceError
from shared.redaction import MASK, RedactingFilter, redact, register_secret

FRED_URL = (
    "HTTPSConnectionPool(host='api.stlouisfed.org', port=443): Max retries exceeded with url: "
    "/fred/series?series_id=GDP&file_type=json&api_key=abcdef0123456789 (Caused by …)"
)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (FRED_URL, "abcdef0123456789"),
        ("/api/v1//company-news?token=tok123456&symbol=AAPL", "tok123456"),
        ("/v7/finance/quote?symbols=AAPL&crumb=Xy.z/1", "Xy.z/1"),
        ("next=https%3A%2F%2Fx%3Fapi_key%3Dquoted999", "quoted999"),
        ("{'X-Finnhub-Token': 'hdr0123456', 'Accept': 'application/json'}", "hdr0123456"),
        ("X-Finnhub-Token: hdr0123456", "hdr0123456"),
    ],
)
def test_query_and_header_credentials_are_masked(text: str, secret: str) -> None:
    clean = redact(text)
    assert secret not in clean and MASK in clean


def test_what_is_not_a_credential_is_kept() -> None:
    text = "GET /v8/finance/chart/AAPL?period1=1&interval=1d&symbol=MSFT my_token_count=3"
    assert redact(text) == text


def test_a_registered_secret_is_masked_wherever_it_appears() -> None:
    register_secret("Registered-Secret-42")
    assert redact("an API echoed Registered-Secret-42 back") == f"an API echoed {MASK} back"


def test_filter_masks_message_arguments_and_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("test_redaction")
    log.addHandler(handler)
    try:
        log.warning("failed: %s", FRED_URL)
        try:
            raise ConnectionError(FRED_URL)
        except ConnectionError:
            log.exception("poll failed")
    finally:
        log.removeHandler(handler)
    output = stream.getvalue()
    assert "abcdef0123456789" not in output
    assert output.count("api_key=***") == 2 and "Traceback" in output


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, ApiAuthError),
        (403, ApiAuthError),
        (404, NotFoundError),
        (429, RetryableError),
        (503, RetryableError),
        (400, SourceError),
    ],
)
def test_one_status_map(status: int, expected: type[SourceError]) -> None:
    error = error_for_status(status, "X", "body with token=leak0123456")
    assert type(error) is expected
    assert "leak0123456" not in str(error)
    assert error_for_status(200, "X") is None
