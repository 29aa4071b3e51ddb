"""HTTP status → pipeline errors, shared by the Finnhub and FRED clients."""

from __future__ import annotations

import requests

from shared.errors import RetryableError, SourceError
from shared.health import Health
from shared.metrics import API_DISABLED


class ApiAuthError(SourceError):
    """401/403: the key is missing, wrong or not entitled; calling again will not help."""


class NotFoundError(SourceError):
    """HTTP 404: nothing there (in replay: nothing recorded); not a fault of the API."""


def check_response(response: requests.Response, what: str) -> None:
    """Raise RetryableError on 429/5xx, ApiAuthError on 401/403, SourceError on other errors."""
    status = response.status_code
    if status < 400:
        return
    detail = response.text[:200].strip()
    if status in (401, 403):
        raise ApiAuthError(f"{what}: HTTP {status} {detail}")
    if status == 404:
        raise NotFoundError(f"{what}: HTTP 404")
    if status == 429 or status >= 500:
        raise RetryableError(f"{what}: HTTP {status}")
    raise SourceError(f"{what}: HTTP {status} {detail}")


def retryable_transport(exc: requests.RequestException, what: str) -> RetryableError:
    """Timeouts and connection errors are worth retrying."""
    return RetryableError(f"{what}: {type(exc).__name__}: {exc}")


class ApiGate:
    """Whether an API may be called: not without a key in live mode, never again after 401/403.

    No key is a choice, not a fault: the API is disabled and health stays green with a note
    ("disabled: no FINNHUB_API_KEY"). A key the API refuses is a fault: health red. The producer
    stays up either way (the supervisor would restart it into the same state); Health logs the
    note or the reason once.
    """

    def __init__(
        self,
        api: str,
        health: Health,
        *,
        key_setting: str,
        key_present: bool,
        live: bool,
        feature: str = "",
    ) -> None:
        """`feature`: what the note says is disabled when that is not the whole service."""
        self.api = api
        self._health = health
        self.reason: str | None = None
        if live and not key_present:
            self.reason = f"disabled: no {key_setting}"
            API_DISABLED.labels(api).set(1)
            health.note(f"api:{api}", f"{feature} {self.reason}".strip())

    def close(self, reason: str) -> None:
        """The API refused the key: never call it again, health red with `reason`."""
        self.reason = reason
        API_DISABLED.labels(self.api).set(1)
        self._health.red(f"api:{self.api}", reason)

    @property
    def open(self) -> bool:
        return self.reason is None
