"""AlertState: exact through JSON mid-stream, independent copies, and rule changes reconciled."""

from __future__ import annotations

import json
import math
import random
from datetime import timedelta

import pytest

from analytics.alerts.engine import (
    AlertState,
    BarFacts,
    Transition,
    evaluate,
    evaluate_forecast_breach,
    reconcile,
)
from analytics.alerts.rules import RuleSet, parse_rules
from analytics.alerts.state import Machine
from analytics.indicators import IndicatorParams
from analytics.series import SeriesState
from tests.unit.analytics.alerts.builders import (
    DEFAULT_FILE,
    START,
    facts,
    level,
    rule_text,
    ruleset,
)

SPLIT_AT = 120  # a 4:1 split happens before this bar


def stream(count: int = 260, seed: int = 11) -> list[BarFacts]:
    """A random walk with heavy-tailed volumes and a split, with its real indicator values."""
    rng = random.Random(seed)  # noqa: S311 - reproducible prices
    series = SeriesState.new(IndicatorParams(), 15.87)
    price, bars = 100.0, []
    for i in range(count):
        price *= math.exp(rng.gauss(0.0, 0.025))
        basis = 4.0 if i >= SPLIT_AT else 1.0
        close = price / basis
        volume = int(rng.paretovariate(2.5) * 1e6 * basis)
        ts = START + timedelta(days=i)
        values = series.feed(ts, close, basis)
        bars.append(BarFacts.of("AAPL", "1d", ts, close, volume, basis, values))
    return bars


def noisy_rules() -> RuleSet:
    """The default rules plus tighter ones, with cooldowns, so a stream moves many machines."""
    default = DEFAULT_FILE.read_text(encoding="utf-8")
    extra = (
        level("rsi_55", threshold=55.0, resolve=50.0, cooldown_bars=3)
        + rule_text(
            "up_2",
            "pct_change",
            bars=3,
            op=">=",
            threshold=2.0,
            resolve_op="<",
            resolve=1.0,
            cooldown_bars=2,
        )
        + rule_text(
            "down_2", "pct_change", bars=7, op="<=", threshold=-2.0, resolve_op=">", resolve=-1.0
        )
        + rule_text(
            "vol_2",
            "volume_spike",
            bars=10,
            op=">",
            threshold=2.0,
            resolve_op="<",
            resolve=1.5,
            cooldown_bars=4,
        )
        + rule_text("bb_mid", "band", side="upper", op=">", resolve_op="<", hysteresis_width=0.1)
    )
    return parse_rules(default + extra, "noisy")


def run_through(rules: RuleSet, state: AlertState, bars: list[BarFacts]) -> list[Transition]:
    return [t for bar in bars for t in evaluate(rules, state, bar)]


@pytest.mark.parametrize("cut", [1, 9, 57, SPLIT_AT - 1, SPLIT_AT, SPLIT_AT + 2, 200])
def test_a_restored_state_continues_exactly_like_an_uninterrupted_run(cut: int) -> None:
    rules, bars = noisy_rules(), stream()
    whole = AlertState()
    expected = run_through(rules, whole, bars)
    assert len(expected) > 60
    assert {t.rule_id for t in expected} >= {"rsi_55", "up_2", "down_2", "vol_2", "bb_mid"}

    first = AlertState()
    got = run_through(rules, first, bars[:cut])
    restored = AlertState.from_state(json.loads(json.dumps(first.to_state())))
    assert restored == first
    got += run_through(rules, restored, bars[cut:])
    assert got == expected
    assert restored.to_state() == whole.to_state()


def test_the_forecasters_state_round_trips_too() -> None:
    rules = ruleset(
        rule_text(
            "fc_up",
            "forecast_breach",
            side="upper",
            op=">",
            resolve_op="<=",
            hysteresis_width=0.2,
            cooldown_bars=1,
        )
    )
    rng = random.Random(5)  # noqa: S311
    steps = [(rng.uniform(90, 110), None if i % 7 == 3 else (95.0, 105.0)) for i in range(80)]

    def run(state: AlertState, part: list) -> list[Transition]:
        out = []
        for i, (close, bounds) in part:
            lo, hi = bounds or (None, None)
            out += evaluate_forecast_breach(rules, state, facts(i, close), lo, hi)
        return out

    indexed = list(enumerate(steps))
    expected = run(AlertState(), indexed)
    assert len(expected) > 10
    first = AlertState()
    got = run(first, indexed[:33])
    got += run(AlertState.from_state(json.loads(json.dumps(first.to_state()))), indexed[33:])
    assert got == expected


def test_copies_are_independent() -> None:
    rules, bars = noisy_rules(), stream()
    state = AlertState()
    run_through(rules, state, bars[:150])
    before = json.dumps(state.to_state())
    copy = state.copy()
    assert copy == state
    run_through(rules, copy, bars[150:])
    assert json.dumps(state.to_state()) == before
    after_copy = json.dumps(copy.to_state())
    run_through(rules, state, bars[150:200])
    assert json.dumps(copy.to_state()) == after_copy


def test_a_version_1_state_with_machines_as_objects_loads_the_same_machines() -> None:
    """Version 2 writes each machine as a list (no key names: a third of a state's bytes);
    a state saved by version 1, machines keyed by name, still loads and continues exactly."""
    rules, bars = noisy_rules(), stream()
    state = AlertState()
    run_through(rules, state, bars[:150])
    assert any(m.firing for m in state.machines.values())
    document = state.to_state()
    assert all(isinstance(m, list) for m in document["machines"].values())
    version_1 = {
        **document,
        "version": 1,
        "machines": {
            rule_id: dict(zip(Machine.FIELDS, m, strict=True))
            for rule_id, m in document["machines"].items()
        },
    }
    restored = AlertState.from_state(json.loads(json.dumps(version_1)))
    assert restored == state
    assert run_through(rules, restored, bars[150:]) == run_through(rules, state, bars[150:])


def test_an_unknown_state_version_is_refused() -> None:
    with pytest.raises(ValueError, match="alert state version"):
        AlertState.from_state({"version": 99})


VOL = level("other", indicator="volatility", threshold=0.5, resolve=0.4)


def fire_rsi(rules: RuleSet) -> tuple[AlertState, Transition]:
    state = AlertState()
    [fired] = evaluate(rules, state, facts(0, rsi=80.0))
    return state, fired


def test_reconcile_resolves_the_firing_machine_of_a_removed_rule() -> None:
    old = ruleset(level(), level("other", threshold=90.0, resolve=85.0))
    new = ruleset(level("other", threshold=90.0, resolve=85.0), version=2)
    state, fired = fire_rsi(old)
    [resolved] = reconcile(old, new, state, "AAPL", "1d", fired.bar_ts)
    assert resolved.state == "resolved"
    assert resolved.message == "AAPL 1d rsi_high: rule removed, resolved"
    assert (resolved.fingerprint, resolved.severity) == (fired.fingerprint, fired.severity)
    assert (resolved.value, resolved.threshold, resolved.rules_version) == (None, None, new.version)
    assert state.machines == {} and state.bars == 1
    assert reconcile(old, new, state, "AAPL", "1d", fired.bar_ts) == []


def test_reconcile_on_a_changed_threshold_then_the_new_rule_starts_fresh() -> None:
    old = ruleset(level())
    new = ruleset(level(threshold=75.0))
    state, fired = fire_rsi(old)
    [resolved] = reconcile(old, new, state, "AAPL", "1d", fired.bar_ts)
    assert resolved.message == "AAPL 1d rsi_high: rule changed, resolved"
    assert resolved.fingerprint == fired.fingerprint
    [again] = evaluate(new, state, facts(1, rsi=80.0))
    assert (again.state, again.threshold, again.fingerprint) == ("firing", 75.0, fired.fingerprint)


def test_reconcile_keeps_unchanged_rules_and_drops_quiet_machines_of_changed_ones() -> None:
    old = ruleset(level(cooldown_bars=10), VOL)
    state = AlertState()
    evaluate(old, state, facts(0, rsi=95.0, volatility=0.6))
    evaluate(
        old, state, facts(1, rsi=60.0, volatility=0.6)
    )  # rsi_high resolves (cooldown 10); other fires
    assert {k: m.firing for k, m in state.machines.items()} == {"rsi_high": False, "other": True}
    assert reconcile(old, old, state, "AAPL", "1d", START) == []
    new = ruleset(level(cooldown_bars=0), VOL)
    assert reconcile(old, new, state, "AAPL", "1d", START) == []
    assert list(state.machines) == ["other"]
    # The cooldown went with the old rule.
    assert [t.state for t in evaluate(new, state, facts(2, rsi=95.0))] == ["firing"]


def test_a_state_saved_under_old_rules_is_reconciled_by_evaluate_on_its_next_bar() -> None:
    old = ruleset(level(severity="critical"))
    new = ruleset(level(severity="info"))
    state, fired = fire_rsi(old)
    restored = AlertState.from_state(json.loads(json.dumps(state.to_state())))
    changes = evaluate(new, restored, facts(1, rsi=80.0))
    assert [(t.state, t.severity, t.message) for t in changes] == [
        ("resolved", "critical", "AAPL 1d rsi_high: rule changed, resolved"),
        ("firing", "info", "AAPL 1d RSI 80 > 70"),
    ]
