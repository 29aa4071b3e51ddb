"""One poll of every configured FRED series: fetch, keep only changed vintages, publish."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from producer.api_errors import ApiAuthError, NotFoundError
from producer.api_poller import PollContext
from producer.fred_client import FredClient
from producer.macro.parsing import parse_observations, parse_series
from shared.errors import SourceError
from shared.schemas import MacroObservation, encode
from shared.settings import MacroSettings

logger = logging.getLogger(__name__)

# The newest stored vintage of each date: an unchanged value (FRED stamps every response with
# the request date as realtime_start) is not published again.
SELECT_NEWEST_VINTAGES = """
SELECT DISTINCT ON (obs_date) obs_date, value
FROM macro_observations
WHERE series_id = %s
ORDER BY obs_date, realtime_start DESC
"""


class MacroPoller:
    """Polls FRED for each series; publishes new or changed vintages and dead letters."""

    def __init__(
        self,
        settings: MacroSettings,
        *,
        client: FredClient,
        context: PollContext,
    ) -> None:
        self._settings = settings
        self._client = client
        self._ctx = context
        self._missing_logged: set[str] = set()

    def poll(self) -> int:
        """Publish every new vintage of every series; returns how many were published."""
        published = 0
        for series_id in self._settings.series:
            if self._ctx.stop.is_set() or not self._ctx.gate.open:
                break
            try:
                published += self._poll_series(series_id)
                self._ctx.health.green(f"series:{series_id}")
            except ApiAuthError as exc:
                self._ctx.gate.close(f"FRED refused the API key, not calling FRED again: {exc}")
            except NotFoundError as exc:
                if series_id not in self._missing_logged:  # replay: not recorded
                    self._missing_logged.add(series_id)
                    logger.warning("no observations for %s: %s", series_id, exc)
            except SourceError as exc:
                self._ctx.health.red(f"series:{series_id}", f"FRED {series_id}: {exc}")
        self._ctx.publisher.flush()
        return published

    def _stored(self, series_id: str) -> dict[date, float | None]:
        with self._ctx.pool.connection() as conn:
            return dict(conn.execute(SELECT_NEWEST_VINTAGES, (series_id,)).fetchall())

    def _poll_series(self, series_id: str) -> int:
        stored = self._stored(series_id)
        metadata = parse_series(self._client.series(series_id))
        # After the first load only recent observations are asked for.
        start = (
            (datetime.now(UTC) - timedelta(days=self._settings.recent_days)).date().isoformat()
            if stored
            else None
        )
        raw, _ = self._client.observations(
            series_id, observation_start=start, limit=self._settings.page_limit
        )
        parsed = parse_observations(series_id, raw, metadata, datetime.now(UTC))
        fresh = [o for o in parsed.observations if _changed(o, stored)]
        key = series_id.encode()
        topic = self._ctx.topics.macro_observations
        for observation in fresh:
            self._ctx.publisher.publish(topic, key, encode(observation))
        for letter in parsed.dead_letters:
            self._ctx.publisher.publish(self._ctx.topics.deadletter, key, encode(letter))
        if fresh or parsed.dead_letters:
            logger.info(
                "%s: %d new vintage(s), %d dead letter(s)",
                series_id,
                len(fresh),
                len(parsed.dead_letters),
            )
        return len(fresh)


def _changed(observation: MacroObservation, stored: dict[date, float | None]) -> bool:
    return observation.obs_date not in stored or stored[observation.obs_date] != observation.value
