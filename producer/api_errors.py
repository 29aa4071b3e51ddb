"""HTTP status → pipeline errors, shared by the Finnhub and FRED clients."""

from __future__ import annotations

import requests
from pydantic import SecretStr

from shared.errors import RetryableError, SourceError
from shared.health import Health
from shared.metrics import API_DISABLED
from shared.redaction import describe_error, redact
from shared.settings import DataSource, Settings


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


def key_gate(
    api: str,
    key: SecretStr | None,
    key_setting: str,
    settings: Settings,
    health: Health,
    feature: str = "",
) -> tuple[ApiGate, str | None]:
    """The gate of an API that needs `key` (the setting `key_setting`), and the key itself."""
    gate = ApiGate(
        api,
        health,
        key_setting=key_setting,
        key_present=key is not None,
        live=settings.source.data_source is DataSource.LIVE,
        feature=feature,
    )
    return gate, key.get_secret_value() if key else None
