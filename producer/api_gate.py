"""Whether an API may be called: its gate (no key in live mode, or a key it refused)."""

from __future__ import annotations

from pydantic import SecretStr

from shared.health import Health
from shared.metrics import API_DISABLED
from shared.settings import DataSource, Settings


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
