"""One poll of every configured FRED series: fetch, keep only changed vintages, publish."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from producer.api_errors import ApiAuthError, NotFoundError
from producer.api_poller import PollContext
from producer.fred_client import FredClient
from producer.macro.parsing import SERVICE, parse_observations, parse_series
from producer.macro.vintages import VintageRecord
from producer.poll_loop import call_with_retry
from producer.publisher import PublishStoppedError
from shared.errors import SourceError
from shared.schemas import MacroObservation, encode
from shared.settings import MacroSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


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
        # What this producer delivered, not what storage holds: an unchanged value (FRED stamps
        # every response with the request date as realtime_start) is not published again.
        self._vintages = VintageRecord(context.pool, SERVICE)

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
            except PublishStoppedError:
                break
        if self._ctx.publisher.flush():
            logger.warning("some vintages are not delivered yet: recorded when they are")
        self._vintages.store()
        return published

    def _poll_series(self, series_id: str) -> int:
        stored = self._vintages.load(series_id)
        metadata = parse_series(self._retry(lambda: self._client.series(series_id), series_id))
        # After the first load only recent observations are asked for.
        start = (
            (datetime.now(UTC) - timedelta(days=self._settings.recent_days)).date().isoformat()
            if stored
            else None
        )
        raw, _ = self._retry(
            lambda: self._client.observations(
                series_id, observation_start=start, limit=self._settings.page_limit
            ),
            f"observations {series_id}",
        )
        parsed = parse_observations(series_id, raw, metadata, datetime.now(UTC))
        fresh = [o for o in parsed.observations if _changed(o, stored)]
        key = series_id.encode()
        topic = self._ctx.topics.macro_observations
        for observation in fresh:
            self._ctx.publisher.publish(
                topic, key, encode(observation), self._vintages.callback(observation)
            )
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

    def _retry(self, call: Callable[[], T], what: str) -> T:
        """The one retry around a FRED request (the client takes the rate-limit slot)."""
        return call_with_retry(
            call,
            limiter=None,
            stop=self._ctx.stop,
            what=f"FRED {what}",
            attempts=self._ctx.retry_attempts,
            backoff_s=self._ctx.retry_backoff_s,
        )


def _changed(observation: MacroObservation, stored: dict[date, float | None]) -> bool:
    return observation.obs_date not in stored or stored[observation.obs_date] != observation.value
