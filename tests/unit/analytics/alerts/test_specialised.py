"""The generated reading of a series' rules (specialised.py) moves the same machines, at the same
bars, with the same values and levels, as reading each rule by its probe (the reference)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.alerts.engine import (
    AlertState,
    BarFacts,
    by_probes,
    evaluate,
    evaluate_with,
)
from analytics.alerts.fields import SOURCES
from analytics.alerts.rules import RuleSet, load_rules
from analytics.indicators import IndicatorValues
from tests.unit.analytics.alerts.builders import DEFAULT_FILE, facts, rule_text, ruleset

# Few distinct numbers, so that values often sit exactly on a level (inclusiveness matters).
NUMBERS = st.sampled_from([0.0, 1.0, 2.5, 30.0, 35.0, 65.0, 70.0, 99.0, 100.0, 100.5, 101.0])
WIDTHS = st.sampled_from([0.0, 0.0, 0.1, 0.5])


@st.composite
def sides(draw: st.DrawFn) -> dict[str, str]:
    """A fire operator and a resolve operator pointing the other way."""
    up = draw(st.booleans())
    op = draw(st.sampled_from([">", ">="] if up else ["<", "<="]))
    resolve_op = draw(st.sampled_from(["<", "<="] if up else [">", ">="]))
    return {"op": op, "resolve_op": resolve_op}


def strict(fields: dict[str, Any], touching: bool) -> dict[str, Any]:
    """A level that fires and resolves at the same value may not include it on both sides."""
    if touching and fields["op"].endswith("=") and fields["resolve_op"].endswith("="):
        fields["resolve_op"] = fields["resolve_op"][0]
    return fields


@st.composite
def rule_tables(draw: st.DrawFn, index: int) -> str:
    kind = draw(st.sampled_from(["level", "band", "crossing", "pct_change", "volume_spike"]))
    fields = draw(sides())
    up = fields["op"].startswith(">")
    if kind in ("level", "pct_change", "volume_spike"):
        threshold, gap = draw(NUMBERS), draw(st.sampled_from([0.0, 0.5, 5.0]))
        fields |= {"threshold": threshold, "resolve": threshold - gap if up else threshold + gap}
        strict(fields, gap == 0.0)
        if kind == "level":
            fields["indicator"] = draw(st.sampled_from(SOURCES))
        else:
            fields["bars"] = draw(st.integers(1, 4))
    elif kind == "band":
        fields |= {"side": "upper" if up else "lower", "hysteresis_width": draw(WIDTHS)}
        strict(fields, fields["hysteresis_width"] == 0.0)
    else:
        subject, reference = draw(
            st.lists(st.sampled_from(SOURCES), min_size=2, max_size=2, unique=True)
        )
        fields |= {"indicator": subject, "reference": reference, "hysteresis_pct": draw(WIDTHS)}
        strict(fields, fields["hysteresis_pct"] == 0.0)
    cooldown = draw(st.sampled_from([None, 0, 1, 3]))
    return rule_text(f"r{index}", kind, cooldown_bars=cooldown, **fields)


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    count = draw(st.integers(1, 6))
    return ruleset(*(draw(rule_tables(index)) for index in range(count)))


@st.composite
def bar_streams(draw: st.DrawFn) -> list[BarFacts]:
    bars = []
    for number in range(draw(st.integers(1, 30))):
        indicators = {name: draw(st.one_of(st.none(), NUMBERS)) for name in IndicatorValues._fields}
        bars.append(
            facts(
                number,
                draw(NUMBERS.filter(lambda x: x > 0.0)),
                volume=draw(st.sampled_from([0, 1, 5, 1000])),
                basis=draw(st.sampled_from([1.0, 1.0, 1.0, 2.0])),
                **indicators,
            )
        )
    return bars


def both_ways(rules: RuleSet, bars: list[BarFacts]) -> tuple[list, list, dict, dict]:
    generated, reference = AlertState(), AlertState()
    got, expected = [], []
    for bar in bars:
        got += evaluate(rules, generated, bar)
        expected += evaluate_with(by_probes, rules, reference, bar)
    return got, expected, generated.to_state(), reference.to_state()


@settings(max_examples=200, deadline=None)
@given(rules=rule_sets(), bars=bar_streams())
def test_the_generated_reading_moves_what_the_probes_move(
    rules: RuleSet, bars: list[BarFacts]
) -> None:
    got, expected, state, reference_state = both_ways(rules, bars)
    assert got == expected
    assert state == reference_state


@settings(max_examples=50, deadline=None)
@given(bars=bar_streams())
def test_the_default_rules_read_the_same_both_ways(bars: list[BarFacts]) -> None:
    rules = load_rules(DEFAULT_FILE)
    got, expected, state, reference_state = both_ways(rules, bars)
    assert got == expected
    assert state == reference_state
