"""The alert rule engine (pure): one state machine per (rule, symbol, interval, direction).

A machine watches a level condition. Quiet, it moves to `firing` on the first bar where the
condition holds (`value op fire level`) and its cooldown is over; firing, it moves to `resolved`
on the first bar where the value is back past the hysteresis (`value resolve_op resolve level`).
Any other bar emits nothing, and a bar whose reading is missing (an indicator still warming up,
too few previous bars on the current split basis) leaves the machine as it is. After a resolve
the machine cannot fire for `cooldown_bars` bars of the series (bar time, not wall time); a
condition still holding once they have passed fires then.

Splits: a pct_change rule whose look-back window reaches across a split basis change reads
nothing (no transition), and a crossing machine does not move on the first bar after a split.

A state serves one service: the analytics consumer calls `evaluate` on each bar, the forecaster
`evaluate_forecast_breach` on each bar (bounds None when no forecast targets it), so each
state's bar clock counts every bar of its series.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

from analytics.alerts.readings import Probe, Reading, labels, probe, read_forecast
from analytics.alerts.rules import Rule, RuleSet
from analytics.alerts.specialised import Move, Moves, specialise
from analytics.alerts.state import AlertState, Machine
from analytics.indicators import IndicatorValues

__all__ = [
    "AlertState",
    "BarFacts",
    "Transition",
    "evaluate",
    "evaluate_forecast_breach",
    "fingerprint",
    "needs_reconcile",
    "reconcile",
]

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_NO_VALUES = IndicatorValues(*(None,) * len(IndicatorValues._fields))


class _Check(NamedTuple):
    """A rule made ready for every bar: how it reads a bar and its two comparisons."""

    rule: Rule
    probe: Probe
    fires: Callable[[float, float], bool]  # value op fire level
    resolves: Callable[[float, float], bool]  # value resolve_op resolve level
    skips_split: bool  # a crossing does not move on the first bar after a split

    @classmethod
    def of(cls, rule: Rule, reads: Probe | None = None) -> _Check:
        """`reads`: how it reads a bar, if not its kind's probe (forecast_breach: this bar's
        forecast interval)."""
        p = rule.parameters
        return cls(
            rule,
            probe(rule) if reads is None else reads,
            _OPS[p["op"]],
            _OPS[p["resolve_op"]],
            rule.kind == "crossing",
        )


class BarRules(NamedTuple):
    """A series' bar rules made ready for every bar: the rules and how they read a bar."""

    rules: tuple[Rule, ...]
    moves: Moves  # indices into `rules`


# Specialised rule lists by content ((id, digest) of each rule): the series a RuleSet caches
# them for share one per distinct list (thousands of series, a handful of lists).
_SPECIALISED: dict[tuple[tuple[str, str], ...], BarRules] = {}


def _specialise(rules: tuple[Rule, ...]) -> BarRules:
    identity = tuple((rule.id, rule.digest) for rule in rules)
    found = _SPECIALISED.get(identity)
    if found is None:
        found = _SPECIALISED[identity] = BarRules(rules, specialise(rules))
    return found


def specialised(rules: RuleSet, symbol: str, interval: str) -> BarRules:
    """The series' bar rules as one generated function (specialised.py): the hot loop."""
    return rules.compiled(symbol, interval, _specialise)


def by_probes(rules: RuleSet, symbol: str, interval: str) -> BarRules:
    """Each rule read by its probe (readings.probe), one after the other: what the generated
    function must do, kept as the reference it is tested against."""
    bar_rules = rules.bar_rules(symbol, interval)
    return BarRules(bar_rules, _probe_moves([_Check.of(rule) for rule in bar_rules]))


def _probe_moves(checks: Sequence[_Check]) -> Moves:
    """The moves of `checks`, each read by its probe (the forecast breach rules' way)."""

    def moves(
        state: AlertState, close: float, volume: int, values: IndicatorValues, split: bool
    ) -> list[Move]:
        machines, bars = state.machines, state.bars
        out: list[Move] = []
        for index, check in enumerate(checks):
            if split and check.skips_split:
                continue
            reading = check.probe(state, close, volume, values)
            if reading is None:
                continue
            rule = check.rule
            machine = machines.get(rule.id)
            if machine is None or not machine.firing:
                if not check.fires(reading[0], reading[1]):
                    continue
                if machine is not None and bars - machine.since_bar <= rule.cooldown_bars:
                    continue
                out.append((index, reading[0], reading[1], True))
            elif check.resolves(reading[0], reading[2]):
                out.append((index, reading[0], reading[2], False))
        return out

    return moves


class BarFacts(NamedTuple):
    """What the rules see of one closed bar: prices on the bar's own split basis. (A tuple: one
    is made per bar, and a frozen dataclass's __init__ cost more than some rules.)"""

    symbol: str
    interval: str
    ts: datetime
    close: float
    volume: int
    split_basis: float
    # IndicatorValues (or a mapping of its fields); a value is None during its warm-up.
    indicators: Mapping[str, float | None] | IndicatorValues

    @classmethod
    def of(
        cls,
        symbol: str,
        interval: str,
        ts: datetime,
        close: float,
        volume: int,
        split_basis: float,
        values: IndicatorValues,
    ) -> BarFacts:
        return cls(symbol, interval, ts, close, volume, split_basis, values)


@dataclass(frozen=True)
class Transition:
    """One state change of one machine: exactly one alert event."""

    fingerprint: str  # the machine's stable id (see `fingerprint`)
    rule_id: str
    rules_version: str
    severity: str
    symbol: str
    interval: str
    state: Literal["firing", "resolved"]
    value: float | None  # the measured value; None for a resolve by `reconcile`
    threshold: float | None  # the level it was compared with; None for a resolve by `reconcile`
    message: str  # one line, e.g. "AAPL 1d RSI 72.31 > 70 (RSI overbought)"
    bar_ts: datetime


def fingerprint(rule_id: str, symbol: str, interval: str, key: str) -> str:
    """32 hex of sha256 over the machine's identity: the same across restarts and rule edits."""
    identity = "\x1f".join((rule_id, symbol, interval, key))
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def evaluate(rules: RuleSet, state: AlertState, facts: BarFacts) -> list[Transition]:
    """Run every rule but forecast_breach on the next bar of `state`'s series.

    UPDATES `state` IN PLACE (machines, bar clock, windows): the caller passes a copy when the
    committed state must stay as it was. Bars must come in order, each once. Machines of rules
    no longer in `rules` (or changed since they moved) are resolved first, as `reconcile` does.
    """
    return evaluate_with(specialised, rules, state, facts)


def evaluate_with(
    ready: Callable[[RuleSet, str, str], BarRules],
    rules: RuleSet,
    state: AlertState,
    facts: BarFacts,
) -> list[Transition]:
    """`evaluate`, with the series' bar rules made ready by `ready` (`specialised` in service;
    the tests compare it with `by_probes`)."""
    split = state.start_bar(facts.split_basis)
    # Checked here, not only inside: two calls a bar saved (once reconciled with the rules in
    # force, a series' machines and windows stay so until the rules change).
    if state.reconciled == rules.version:
        changes: list[Transition] = []
    else:
        changes = _drop_stale(rules, state, facts.symbol, facts.interval, facts.ts)
    closes, volumes = rules.history
    if state.closes.maxlen != closes or state.volumes.maxlen != volumes:
        state.fit_windows(closes, volumes)
    values = facts.indicators
    if not isinstance(values, IndicatorValues):  # a mapping of some columns (tests, tools)
        values = _NO_VALUES._replace(**values)
    bar_rules = ready(rules, facts.symbol, facts.interval)
    moves = bar_rules.moves(state, facts.close, facts.volume, values, split)
    _move(rules, bar_rules.rules, state, facts, moves, changes)
    state.end_bar(facts.close, facts.volume)  # after the rules: they look at the previous bars
    return changes


def _move(
    rules: RuleSet,
    moved: Sequence[Rule],
    state: AlertState,
    facts: BarFacts,
    moves: list[Move],
    changes: list[Transition],
) -> None:
    """Each move's machine replaced and its event made (a transition's words are made only
    here: most bars move none)."""
    for index, value, level, firing in moves:
        _transition(rules, moved[index], state, facts, value, level, firing, changes)


def evaluate_forecast_breach(
    rules: RuleSet,
    state: AlertState,
    facts: BarFacts,
    lo95: float | None,
    hi95: float | None,
) -> list[Transition]:
    """Run the forecast_breach rules on the next bar, against the 95% interval of the forecast
    step that targets it (on the bar's split basis). `lo95`/`hi95` None: no fitted forecast
    targets this bar, so no machine moves (the bar clock still advances). Updates `state` in
    place, like `evaluate`."""
    state.bars += 1
    changes = _drop_stale(rules, state, facts.symbol, facts.interval, facts.ts)
    if lo95 is None or hi95 is None:
        return changes
    checks = [
        _Check.of(rule, _forecast_probe(rule, lo95, hi95))
        for rule in rules.rules
        if rule.kind == "forecast_breach" and rule.applies_to(facts.symbol, facts.interval)
    ]
    moves = _probe_moves(checks)(state, facts.close, facts.volume, _NO_VALUES, False)
    _move(rules, [check.rule for check in checks], state, facts, moves, changes)
    return changes


def _forecast_probe(rule: Rule, lo95: float, hi95: float) -> Probe:
    """A forecast_breach rule's reading of this bar: against this bar's 95% interval."""

    def forecast_breach(
        state: AlertState, close: float, volume: int, values: IndicatorValues
    ) -> Reading:
        return read_forecast(rule, close, lo95, hi95)

    return forecast_breach


def reconcile(
    old: RuleSet,
    new: RuleSet,
    state: AlertState,
    symbol: str,
    interval: str,
    bar_ts: datetime,
) -> list[Transition]:
    """After `new` replaced `old` (SIGHUP): resolve the firing machines of rules removed or
    changed ("rule removed" / "rule changed") and drop those machines, quiet ones too. Updates
    `state` in place. Each machine keeps the digest of the rule it ran under, so the decision
    needs only `new` (`old` names what was replaced): a state restored from before any number
    of edits is reconciled the same way, and `evaluate` does it on the next bar anyway."""
    del old  # the machines' digests say more than `old` can (see above)
    return _drop_stale(new, state, symbol, interval, bar_ts)


def needs_reconcile(rules: RuleSet, state: AlertState) -> bool:
    """Whether `state` holds a machine of a rule that `rules` removed or changed."""
    for rule_id, machine in state.machines.items():
        rule = rules.get(rule_id)
        if rule is None or rule.digest != machine.rule_digest:
            return True
    return False


def _drop_stale(
    rules: RuleSet, state: AlertState, symbol: str, interval: str, bar_ts: datetime
) -> list[Transition]:
    if state.reconciled == rules.version:
        return []  # checked against these rules already (every bar calls this)
    changes: list[Transition] = []
    for rule_id, machine in list(state.machines.items()):
        rule = rules.get(rule_id)
        if rule is not None and rule.digest == machine.rule_digest:
            continue
        del state.machines[rule_id]
        if machine.firing:
            why = "rule removed" if rule is None else "rule changed"
            changes.append(
                Transition(
                    fingerprint(rule_id, symbol, interval, machine.key),
                    rule_id,
                    rules.version,
                    machine.severity,
                    symbol,
                    interval,
                    "resolved",
                    None,
                    None,
                    f"{symbol} {interval} {rule_id}: {why}, resolved",
                    bar_ts,
                )
            )
    state.reconciled = rules.version
    return changes


def _transition(
    rules: RuleSet,
    rule: Rule,
    state: AlertState,
    facts: BarFacts,
    value: float,
    level: float,
    firing: bool,
    changes: list[Transition],
) -> None:
    """The machine of `rule` moves to firing (or resolved): replaced, and its event made."""
    key = rule.direction
    state.machines[rule.id] = Machine(firing, state.bars, facts.ts, rule.digest, rule.severity, key)
    words = labels(rule)
    op = rule.parameters["op" if firing else "resolve_op"]
    reference = words.reference if firing else words.resolve_reference
    message = (
        f"{facts.symbol} {facts.interval} {words.subject} {words.text(value)} "
        f"{op} {reference}{words.text(level)}{'' if firing else ', resolved'}"
        f"{f' ({rule.description})' if rule.description else ''}"
    )
    changes.append(
        Transition(
            fingerprint(rule.id, facts.symbol, facts.interval, key),
            rule.id,
            rules.version,
            rule.severity,
            facts.symbol,
            facts.interval,
            "firing" if firing else "resolved",
            value,
            level,
            message,
            facts.ts,
        )
    )
