"""producer.macro's plan: every configured FRED series, only its new or changed vintages."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from producer.api_gate import ApiGate
from producer.fred_client import FredClient
from producer.macro.parsing import parse_observations, parse_series
from producer.macro.vintages import VintageRecord
from producer.plans import ApiPlan, Poll, PollReport
from producer.poll_loop import RetryPolicy
from shared.health import Health
from shared.schemas import MacroObservation, encode
from shared.settings import MacroSettings

logger = logging.getLogger(__name__)


class MacroPlan(ApiPlan):
    """Polls FRED for each series; publishes new or changed vintages and dead letters."""

    def __init__(
        self,
        settings: MacroSettings,
        *,
        client: FredClient,
        gate: ApiGate,
        vintages: VintageRecord,
        retry: RetryPolicy,
    ) -> None:
        super().__init__(gate, retry)
        self._settings = settings
        self._client = client
        # What this producer delivered, not what storage holds: an unchanged value (FRED stamps
        # every response with the request date as realtime_start) is not published again.
        self._vintages = vintages

    def keys(self) -> Iterable[str]:
        return self._settings.series

    def health_key(self, key: str) -> str:
        return f"series:{key}"

    def describe(self, key: str) -> str:
        return f"FRED {key}"

    def finish(self, poll: Poll[PollReport], health: Health) -> None:
        if poll.report.undelivered:
            logger.warning("some vintages are not delivered yet: recorded when they are")
        self._vintages.store()

    def poll_key(self, key: str, poll: Poll[PollReport]) -> None:
        series_id = key
        stored = self._vintages.load(series_id)
        metadata = parse_series(
            self.ask(lambda: self._client.series(series_id), f"FRED {series_id}")
        )
        # After the first load only recent observations are asked for.
        start = (
            (datetime.now(UTC) - timedelta(days=self._settings.recent_days)).date().isoformat()
            if stored
            else None
        )
        raw, _ = self.ask(
            lambda: self._client.observations(
                series_id, observation_start=start, limit=self._settings.page_limit
            ),
            f"FRED observations {series_id}",
        )
        parsed = parse_observations(series_id, raw, metadata, datetime.now(UTC))
        fresh = [o for o in parsed.observations if _changed(o, stored)]
        outlet = poll.outlet
        for observation in fresh:
            outlet.publish(
                outlet.topics.macro_observations,
                series_id.encode(),
                encode(observation),
                self._vintages.callback(observation),
            )
        poll.count(series_id, len(fresh), parsed.dead_letters, "vintage")


def _changed(observation: MacroObservation, stored: dict[date, float | None]) -> bool:
    return observation.obs_date not in stored or stored[observation.obs_date] != observation.value
