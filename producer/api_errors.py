"""HTTP status → pipeline errors, shared by every API client (Finnhub, FRED, Yahoo)."""

from __future__ import annotations

import requests

from shared.errors import RetryableError, SourceError
from shared.redaction import describe_error, redact


class ApiAuthError(SourceError):
    """401/403: the key is missing, wrong or not entitled; calling again will not help."""


class NotFoundError(SourceError):
    """HTTP 404: nothing there (in replay: nothing recorded); not a fault of the API."""


def error_for_status(status: int, what: str, detail: str = "") -> SourceError | None:
    """The one map from an HTTP status to the pipeline's errors; None below 400.

    401/403 ApiAuthError (calling again will not help), 404 NotFoundError, 429 and 5xx
    RetryableError, any other 4xx SourceError. Every client (Finnhub, FRED, Yahoo's chart and
    quote) raises what this returns. `detail` (a bit of the body) is redacted.
    """
    if status < 400:
        return None
    text = redact(f"{what}: HTTP {status} {detail[:200]}".strip())
    if status in (401, 403):
        return ApiAuthError(text)
    if status == 404:
        return NotFoundError(f"{what}: HTTP 404")
    if status == 429 or status >= 500:
        return RetryableError(f"{what}: HTTP {status}")
    return SourceError(text)


def check_response(response: requests.Response, what: str) -> None:
    """Raise what error_for_status maps the response's status to."""
    error = error_for_status(response.status_code, what, response.text)
    if error is not None:
        raise error


def retryable_transport(exc: BaseException, what: str) -> RetryableError:
    """Timeouts and connection errors are worth retrying; their text (which repeats the URL,
    query credentials included) is redacted."""
    return RetryableError(f"{what}: {describe_error(exc)}")
