"""How the consumers use the rules: the rules in force (reloaded on SIGHUP at a batch boundary),
and transitions turned into alert_events rows, marked historical when computed for old bars."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from analytics.alerts.engine import Transition
from analytics.alerts.rules import RuleError, RuleSet, load_rules
from analytics.alerts.store import AlertRow
from shared.errors import SettingsError

logger = logging.getLogger(__name__)

_INTERVALS = {"1d": timedelta(days=1), "1h": timedelta(hours=1), "60m": timedelta(hours=1)}
_INTERVALS.update({f"{m}m": timedelta(minutes=m) for m in (1, 2, 5, 15, 30, 90)})


class RulesInForce:
    """The rule set a consumer evaluates. SIGHUP asks for the file to be read again; the next
    batch swaps to it only if it is valid (otherwise one line says why and the old rules stay).
    Machines of a rule removed or changed resolve on their series' next bar (the engine
    compares each machine's rule digest)."""

    def __init__(self, path: Path) -> None:
        """A file that is not valid at start stops the service with one line (a wrong setting)."""
        self.path = path
        try:
            self._rules = load_rules(path)
        except (RuleError, OSError) as exc:
            raise SettingsError(f"invalid setting ALERT_RULES_PATH={path}: {exc}") from None
        self._reload = threading.Event()

    def install_sighup(self) -> None:
        """Reload on SIGHUP (main thread only: signal handlers can be set nowhere else)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, lambda _signum, _frame: self._reload.set())

    def request_reload(self) -> None:
        self._reload.set()

    def current(self) -> RuleSet:
        if self._reload.is_set():
            self._reload.clear()
            try:
                rules = load_rules(self.path)
            except (RuleError, OSError) as exc:
                logger.error(
                    "rules file %s not loaded, keeping version %s: %s",
                    self.path,
                    self._rules.version,
                    exc,
                )
            else:
                logger.info("rules %s replace %s", rules.version, self._rules.version)
                self._rules = rules
        return self._rules


def is_historical(
    interval: str, ts: datetime, fetched_at: datetime, created_ms: int, age_s: float
) -> bool:
    """An alert is historical when its bar is old: published long after it closed (a backfill),
    or consumed long after it was published (a consumer catching up, a replay)."""
    closed = ts + _INTERVALS.get(interval, timedelta(0))
    if (fetched_at - closed).total_seconds() > age_s:
        return True
    return time.time() - created_ms / 1000 > age_s


def alert_rows(transitions: Sequence[Transition], historical: bool) -> list[AlertRow]:
    return [
        AlertRow(
            t.fingerprint,
            t.rule_id,
            t.rules_version,
            t.severity,
            t.symbol,
            t.interval,
            t.state,
            t.value,
            t.threshold,
            t.message,
            t.bar_ts,
            historical,
        )
        for t in transitions
    ]
