"""How the consumers use the rules: the rules in force (reloaded on SIGHUP at a batch boundary),
and transitions turned into alert_events rows, marked historical when computed for old bars."""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from analytics.alerts.engine import (
    BarFacts,
    Transition,
    evaluate,
    fingerprint,
    needs_reconcile,
    reconcile,
)
from analytics.alerts.rules import RuleError, RuleSet, load_rules
from analytics.alerts.state import AlertState
from analytics.alerts.store import AlertRow
from shared.errors import SettingsError

logger = logging.getLogger(__name__)

_INTERVALS = {"1d": timedelta(days=1), "1h": timedelta(hours=1), "60m": timedelta(hours=1)}
_INTERVALS.update({f"{m}m": timedelta(minutes=m) for m in (1, 2, 5, 15, 30, 90)})


class RulesInForce:
    """The rule set a consumer evaluates. SIGHUP asks for the file to be read again; the next
    batch swaps to it only if it is valid (otherwise one line says why and the old rules stay).
    Machines of a rule removed or changed are resolved by the consumer's sweep right after the
    swap (`sweep`, through the loop's Handler.sweep_due), and on their series' next bar by
    the engine anyway (it compares each machine's rule digest)."""

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


class ReloadSweeps:
    """A consumer's side of the loop's sweep (Handler.sweep_due) for its alert machines: a
    sweep is due after a rules reload, or after a load found machines of rules since removed
    or changed (a restart with an edited file, a partition from a member with older rules)."""

    def __init__(self, rules: RulesInForce) -> None:
        self._rules = rules
        self._reconciled = rules.current().version  # every loaded machine checked against it
        self._asked = False
        self.sweeping: str | None = None  # the version a sweep in progress reconciles with

    def loaded(self, states: Iterable[AlertState]) -> None:
        rules = self._rules.current()
        if any(needs_reconcile(rules, state) for state in states):
            self._asked = True

    def due(self) -> bool:
        version = self._rules.current().version
        due = self._asked or version != self._reconciled
        self.sweeping = version if due else None
        return due

    def committed(self, version: str | None) -> None:
        """A batch committed; `version`: the rules a sweep in it reconciled with, if any."""
        if version is not None:
            self._reconciled, self._asked, self.sweeping = version, False, None


class _WithAlerts(Protocol):
    alerts: AlertState


SeriesT = TypeVar("SeriesT", bound=_WithAlerts)


@dataclasses.dataclass
class Swept:
    """What a sweep changes: the partitions' new series maps (only those that changed), the
    series it moved, and the resolve events."""

    states: dict[Hashable, dict[tuple[str, str], Any]]
    series: dict[tuple[str, str], Any]
    rows: list[AlertRow]


def sweep(
    rules: RuleSet,
    states: Mapping[Hashable, Mapping[tuple[str, str], SeriesT] | None],
    newest_bar: Callable[[SeriesT], datetime | None],
) -> Swept:
    """Resolve, in every series of `states`, the firing machines of rules that `rules` removed
    or changed, and drop those machines (pure: the series are replaced, never changed). Each
    resolve is stamped with its series' newest bar and is not historical (the rules changed
    now). A series without a stale machine is left as it is."""
    swept = Swept({}, {}, [])
    for partition, series_map in states.items():
        for key, series in (series_map or {}).items():
            if not needs_reconcile(rules, series.alerts):
                continue
            alerts = series.alerts.copy()
            machines = alerts.machines.values()
            bar_ts = newest_bar(series) or max(machine.since_ts for machine in machines)
            transitions = reconcile(rules, rules, alerts, key[0], key[1], bar_ts)
            moved = dataclasses.replace(series, alerts=alerts)  # type: ignore[type-var]
            changed = swept.states.get(partition)
            if changed is None:
                changed = swept.states[partition] = dict(series_map or {})
            changed[key] = swept.series[key] = moved
            swept.rows.extend(alert_rows(transitions, historical=False))
    return swept


def rebuild(
    rules: RuleSet,
    old: AlertState,
    bars: Iterable[BarFacts],
    symbol: str,
    interval: str,
    newest: datetime,
) -> tuple[AlertState, list[Transition]]:
    """A recompute's alerts: the machines evaluated afresh over the recomputed series (`bars`,
    oldest first, ending at `newest`) and the events that move each machine of `old` to its
    recomputed state. Only the difference is emitted — a machine firing in one state and not
    in the other — stamped with the newest bar (the series' chain of events stays one line;
    no event is inserted before events already stored), the firing bar named in the message.
    The caller marks them historical."""
    new = AlertState()
    fired: dict[str, Transition] = {}
    for facts in bars:
        for transition in evaluate(rules, new, facts):
            if transition.state == "firing":
                fired[transition.rule_id] = transition
    changes: list[Transition] = []
    for rule_id in sorted(set(old.machines) | set(new.machines)):
        was, now = old.machines.get(rule_id), new.machines.get(rule_id)
        was_firing, now_firing = was is not None and was.firing, now is not None and now.firing
        same_machine = was is not None and now is not None and was.key == now.key
        if was is not None and was_firing and not (now_firing and same_machine):
            changes.append(
                Transition(
                    fingerprint(rule_id, symbol, interval, was.key),
                    rule_id,
                    rules.version,
                    was.severity,
                    symbol,
                    interval,
                    "resolved",
                    None,
                    None,
                    f"{symbol} {interval} {rule_id}: resolved by a recompute (the recomputed "
                    "series is not firing at its newest bar)",
                    newest,
                )
            )
        if now_firing and not (was_firing and same_machine):
            latest = fired[rule_id]
            changes.append(
                dataclasses.replace(
                    latest,
                    message=f"{latest.message} [firing since {latest.bar_ts.isoformat()}, found "
                    "by a recompute]",
                    bar_ts=newest,
                )
            )
    return new, changes
