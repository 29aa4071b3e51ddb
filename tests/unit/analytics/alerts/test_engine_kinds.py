"""Each rule kind fires and resolves at the right bar of a hand-made series."""

from __future__ import annotations

import pytest

from analytics.alerts.engine import (
    AlertState,
    evaluate,
    evaluate_forecast_breach,
    fingerprint,
)
from tests.unit.analytics.alerts.builders import facts, level, rule_text, ruleset, run, transitions


def rsi_bars(*values: float | None) -> list:
    return [facts(i, rsi=v) for i, v in enumerate(values)]


def test_level_fires_when_it_starts_to_hold_and_resolves_past_the_hysteresis() -> None:
    rules = ruleset(level())
    bars = rsi_bars(60, 69, 70, 71, 75, 68, 66, 65, 64.9, 71)
    assert run(rules, bars) == [
        (3, "rsi_high", "firing"),  # 70 does not fire: `>` is strict
        (8, "rsi_high", "resolved"),  # 65 does not resolve: `<` is strict
        (9, "rsi_high", "firing"),
    ]


def test_no_flapping_between_the_resolve_level_and_the_threshold() -> None:
    rules = ruleset(level())
    bars = rsi_bars(66, 69.9, 66, 69, 71, 66, 69.9, 65.5, 69.99, 66, 64)
    assert run(rules, bars) == [(4, "rsi_high", "firing"), (10, "rsi_high", "resolved")]


@pytest.mark.parametrize(
    ("op", "resolve_op", "expected"),
    [
        (">", "<", [(2, "firing")]),
        (">=", "<", [(1, "firing")]),
        (">", "<=", [(2, "firing"), (4, "resolved")]),
        (">=", "<=", [(1, "firing"), (4, "resolved")]),
    ],
)
def test_inclusiveness_at_the_boundary(op: str, resolve_op: str, expected: list) -> None:
    rules = ruleset(level(op=op, resolve_op=resolve_op))
    got = run(rules, rsi_bars(69.99, 70.0, 70.01, 66.0, 65.0))
    assert [(i, s) for i, _, s in got] == expected


def test_none_leaves_the_machine_unchanged() -> None:
    rules = ruleset(level())
    bars = rsi_bars(None, 71, None, None, 60, None, 80)
    assert run(rules, bars) == [
        (1, "rsi_high", "firing"),
        (4, "rsi_high", "resolved"),
        (6, "rsi_high", "firing"),
    ]
    assert run(rules, rsi_bars(None, None, None)) == []


def test_the_message_is_one_line_with_the_value_the_level_and_the_description() -> None:
    rules = ruleset(level(description="overbought"))
    fired, resolved = transitions(rules, rsi_bars(72.3145, 64.0))
    assert fired.message == "AAPL 1d RSI 72.31 > 70 (overbought)"
    assert (fired.value, fired.threshold, fired.severity) == (72.3145, 70.0, "warning")
    assert resolved.message == "AAPL 1d RSI 64 < 65, resolved (overbought)"
    assert (resolved.value, resolved.threshold) == (64.0, 65.0)
    assert (
        fired.fingerprint == resolved.fingerprint == fingerprint("rsi_high", "AAPL", "1d", "above")
    )
    assert len(fired.fingerprint) == 32
    assert fired.rules_version == rules.version


def test_a_level_on_close_and_the_symbol_and_interval_filters() -> None:
    rules = ruleset(
        level(
            "cheap",
            indicator="close",
            op="<",
            threshold=50.0,
            resolve_op=">",
            resolve=55.0,
            symbols=["MSFT"],
            intervals=["1h"],
        )
    )
    assert run(rules, [facts(0, 40.0, symbol="MSFT", interval="1h")]) == [(0, "cheap", "firing")]
    assert run(rules, [facts(0, 40.0, symbol="AAPL", interval="1h")]) == []
    assert run(rules, [facts(0, 40.0, symbol="MSFT", interval="1d")]) == []


def band_bars(*closes: float | None) -> list:
    return [
        facts(i, c, bb_upper=110.0, bb_middle=100.0, bb_lower=90.0) for i, c in enumerate(closes)
    ]


def test_band_upper_fires_outside_and_resolves_back_inside() -> None:
    rules = ruleset(
        rule_text("bb_up", "band", side="upper", op=">", resolve_op="<=", hysteresis_width=0.0)
    )
    assert run(rules, band_bars(105, 110, 111, 112, 110.5, 110, 111)) == [
        (2, "bb_up", "firing"),
        (5, "bb_up", "resolved"),
        (6, "bb_up", "firing"),
    ]
    assert (
        transitions(rules, band_bars(111))[0].message == "AAPL 1d close 111 > Bollinger upper 110"
    )


def test_band_lower_with_hysteresis_resolves_a_fraction_of_the_width_inside() -> None:
    rules = ruleset(
        rule_text("bb_low", "band", side="lower", op="<", resolve_op=">=", hysteresis_width=0.25)
    )
    # Width 20: resolves at close >= 90 + 5.
    assert run(rules, band_bars(91, 89, 92, 94.99, 95)) == [
        (1, "bb_low", "firing"),
        (4, "bb_low", "resolved"),
    ]
    resolved = transitions(rules, band_bars(89, 95))[1]
    assert (
        resolved.message == "AAPL 1d close 95 >= Bollinger lower + 0.25 x band width = 95, resolved"
    )


def test_band_warming_up_changes_nothing() -> None:
    rules = ruleset(
        rule_text("bb_up", "band", side="upper", op=">", resolve_op="<=", hysteresis_width=0.0)
    )
    assert run(rules, [facts(0, 500.0), facts(1, 500.0, bb_upper=110.0)]) == []


def macd_bars(*pairs: tuple[float, float], basis: list[float] | None = None) -> list:
    bases = basis or [1.0] * len(pairs)
    return [
        facts(i, 100.0, basis=b, macd=m, macd_signal=s)
        for i, ((m, s), b) in enumerate(zip(pairs, bases, strict=True))
    ]


CROSSING = rule_text(
    "macd_up",
    "crossing",
    indicator="macd",
    reference="macd_signal",
    op=">",
    resolve_op="<=",
    hysteresis_pct=0.0,
)


def test_crossing_is_a_level_of_one_indicator_against_another() -> None:
    rules = ruleset(CROSSING)
    bars = macd_bars((1, 2), (2, 2), (3, 2), (4, 2), (2, 2), (1, 2), (2.5, 2))
    assert run(rules, bars) == [
        (2, "macd_up", "firing"),
        (4, "macd_up", "resolved"),
        (6, "macd_up", "firing"),
    ]
    assert transitions(rules, bars)[0].message == "AAPL 1d MACD 3 > MACD signal 2"


def test_crossing_with_hysteresis_in_percent_of_close() -> None:
    rules = ruleset(
        rule_text(
            "macd_up",
            "crossing",
            indicator="macd",
            reference="macd_signal",
            op=">",
            resolve_op="<",
            hysteresis_pct=0.5,
        )
    )
    # close 100: resolves once macd < signal - 0.5.
    bars = macd_bars((3, 2), (1.6, 2), (1.5, 2), (1.49, 2))
    assert run(rules, bars) == [(0, "macd_up", "firing"), (3, "macd_up", "resolved")]


def test_a_crossing_machine_does_not_move_on_the_first_bar_after_a_split() -> None:
    rules = ruleset(CROSSING)
    # Crosses above on the split bar (basis 1 -> 2): nothing; still above on the next bar: fires.
    bars = macd_bars((1, 2), (3, 2), (3, 2), basis=[1.0, 2.0, 2.0])
    assert run(rules, bars) == [(2, "macd_up", "firing")]
    # Firing, back below on the split bar: the resolve waits for the next bar.
    bars = macd_bars((3, 2), (1, 2), (1, 2), basis=[1.0, 4.0, 4.0])
    assert run(rules, bars) == [(0, "macd_up", "firing"), (2, "macd_up", "resolved")]


PCT_UP = rule_text("up", "pct_change", bars=2, op=">", threshold=5.0, resolve_op="<", resolve=2.5)
PCT_DOWN = rule_text(
    "down", "pct_change", bars=2, op="<", threshold=-5.0, resolve_op=">", resolve=-2.5
)


def close_bars(*closes: float, basis: list[float] | None = None, volumes: list[int] | None = None):
    bases = basis or [1.0] * len(closes)
    vols = volumes or [1000] * len(closes)
    return [
        facts(i, c, basis=b, volume=v)
        for i, (c, b, v) in enumerate(zip(closes, bases, vols, strict=True))
    ]


def test_pct_change_compares_with_the_close_k_bars_ago_as_two_machines() -> None:
    rules = ruleset(PCT_UP, PCT_DOWN)
    bars = close_bars(100, 100, 104, 106, 108, 108, 108, 100, 100, 102.7)
    assert run(rules, bars) == [
        (3, "up", "firing"),  # 106 vs 100: +6%
        (5, "up", "resolved"),  # 108 vs 106: +1.9% (108 vs 104, +3.8%, keeps it firing)
        (7, "down", "firing"),  # 100 vs 108: -7.4%
        (9, "down", "resolved"),  # 102.7 vs 100: +2.7%
    ]
    first = transitions(rules, bars)[0]
    assert first.message == "AAPL 1d close change over 2 bars +6.00% > +5%"
    assert first.value == pytest.approx(6.0)


def test_pct_change_never_compares_across_a_split() -> None:
    rules = ruleset(PCT_UP, PCT_DOWN)
    # 2:1 split before bar 2. Raw prices halve (-50%: no fire); bar 3's window still reaches
    # back to bar 1 (old basis) so +6% there is skipped; bar 4 compares 53 with bar 2's 50.
    bars = close_bars(100, 100, 50, 53, 53, basis=[1.0, 1.0, 2.0, 2.0, 2.0])
    assert run(rules, bars) == [(4, "up", "firing")]


def test_pct_change_firing_does_not_resolve_across_a_split() -> None:
    rules = ruleset(PCT_UP)
    bars = close_bars(100, 100, 110, 55, 55, 55, basis=[1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
    assert run(rules, bars) == [(2, "up", "firing"), (5, "up", "resolved")]


SPIKE = rule_text(
    "spike", "volume_spike", bars=3, op=">", threshold=3.0, resolve_op="<", resolve=2.0
)


def test_volume_spike_average_excludes_the_current_bar() -> None:
    rules = ruleset(SPIKE)
    # Bar 3: 301 / mean(100, 100, 100) = 3.01 fires; with bar 3 in the mean it would be 1.8;
    # bar 4: 400 / mean(100, 100, 301) = 2.4 keeps it firing.
    bars = close_bars(100, 100, 100, 100, 100, 100, volumes=[100, 100, 100, 301, 400, 100])
    assert run(rules, bars) == [(3, "spike", "firing"), (5, "spike", "resolved")]
    assert transitions(rules, bars)[0].message == "AAPL 1d volume / 3-bar average 3.01x > 3x"


@pytest.mark.parametrize(("op", "fires"), [(">", False), (">=", True)])
def test_volume_spike_inclusiveness(op: str, fires: bool) -> None:
    rules = ruleset(
        rule_text(
            "spike", "volume_spike", bars=3, op=op, threshold=3.0, resolve_op="<", resolve=2.0
        )
    )
    bars = close_bars(1, 1, 1, 1, volumes=[100, 100, 100, 300])
    assert run(rules, bars) == ([(3, "spike", "firing")] if fires else [])


def test_volume_spike_needs_n_previous_bars_and_a_nonzero_average() -> None:
    rules = ruleset(SPIKE)
    assert run(rules, close_bars(1, 1, 1, volumes=[100, 100, 10**9])) == []
    assert run(rules, close_bars(1, 1, 1, 1, volumes=[0, 0, 0, 500])) == []


def test_volume_spike_rescales_previous_volumes_on_a_split() -> None:
    rules = ruleset(SPIKE)
    # 2:1 split before bar 3: the previous 100s are 200s on the new basis, 600 is 3x: no fire.
    bars = close_bars(1, 1, 1, 0.5, 0.5, basis=[1, 1, 1, 2, 2], volumes=[100, 100, 100, 600, 601])
    assert run(rules, bars) == []
    # 601 vs mean(200, 200, 600) is not a spike either; 2000 vs mean(200, 600, 601) is.
    bars += [facts(5, 0.5, basis=2.0, volume=2000)]
    assert run(rules, bars) == [(5, "spike", "firing")]


def test_cooldown_counts_bars() -> None:
    rules = ruleset(level(cooldown_bars=2))
    bars = rsi_bars(71, 60, 71, None, 71, 71)
    # Resolved at bar 1: bars 2 and 3 cannot fire (the None bar counts too); bar 4 fires.
    assert run(rules, bars) == [
        (0, "rsi_high", "firing"),
        (1, "rsi_high", "resolved"),
        (4, "rsi_high", "firing"),
    ]
    assert run(ruleset(level()), bars) == [
        (0, "rsi_high", "firing"),
        (1, "rsi_high", "resolved"),
        (2, "rsi_high", "firing"),
    ]


FORECAST = rule_text(
    "fc_up", "forecast_breach", side="upper", op=">", resolve_op="<=", hysteresis_width=0.0
) + rule_text(
    "fc_low", "forecast_breach", side="lower", op="<", resolve_op=">=", hysteresis_width=0.1
)


def test_forecast_breach_two_machines_and_no_forecast_changes_nothing() -> None:
    rules = ruleset(FORECAST)
    state = AlertState()
    steps = [
        (101, 90, 100),
        (102, None, None),
        (99, 90, 100),
        (89, 90, 100),
        (90.9, 90, 100),
        (91, 90, 100),
    ]
    got = []
    for i, (close, lo, hi) in enumerate(steps):
        for t in evaluate_forecast_breach(rules, state, facts(i, close), lo, hi):
            got.append((i, t.rule_id, t.state, t.message))
    assert got == [
        (0, "fc_up", "firing", "AAPL 1d close 101 > forecast 95% upper 100"),
        (2, "fc_up", "resolved", "AAPL 1d close 99 <= forecast 95% upper 100, resolved"),
        (3, "fc_low", "firing", "AAPL 1d close 89 < forecast 95% lower 90"),
        (
            5,
            "fc_low",
            "resolved",
            "AAPL 1d close 91 >= forecast 95% lower + 0.1 x interval width = 91, resolved",
        ),
    ]
    assert state.bars == len(steps)


def test_each_service_runs_only_its_own_kinds() -> None:
    rules = ruleset(FORECAST, level())
    state = AlertState()
    assert evaluate(rules, state, facts(0, 500.0, rsi=50.0)) == []
    assert [
        t.rule_id
        for t in evaluate_forecast_breach(rules, state, facts(1, 500.0, rsi=99.0), 90.0, 100.0)
    ] == ["fc_up"]
