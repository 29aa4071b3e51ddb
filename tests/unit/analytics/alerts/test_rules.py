"""The rules file: the default one loads, and each kind of mistake is one line naming the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.alerts.rules import RuleError, load_rules, parse_rules
from shared.errors import PipelineError
from tests.unit.analytics.alerts.builders import DEFAULT_FILE, level, rule_text, ruleset


def test_the_default_rules_file_loads_with_every_default_rule() -> None:
    rules = load_rules(DEFAULT_FILE)
    kinds = {rule.id: (rule.kind, rule.direction) for rule in rules.rules}
    assert kinds == {
        "rsi_overbought": ("level", "above"),
        "rsi_oversold": ("level", "below"),
        "bollinger_upper_breakout": ("band", "upper"),
        "bollinger_lower_breakout": ("band", "lower"),
        "macd_above_signal": ("crossing", "above"),
        "macd_below_signal": ("crossing", "below"),
        "pct_change_up": ("pct_change", "up"),
        "pct_change_down": ("pct_change", "down"),
        "volume_spike": ("volume_spike", "above"),
        "volatility_high": ("level", "above"),
        "forecast_breach_upper": ("forecast_breach", "upper"),
        "forecast_breach_lower": ("forecast_breach", "lower"),
    }
    rsi = rules.get("rsi_overbought")
    assert rsi is not None
    assert dict(rsi.parameters) == {
        "indicator": "rsi",
        "op": ">",
        "threshold": 70.0,
        "resolve_op": "<",
        "resolve": 65.0,
    }
    assert rules.version.startswith("1+") and len(rules.version) == 10
    assert rules.source == str(DEFAULT_FILE)


def test_version_is_the_file_version_plus_a_hash_of_the_rules_not_of_the_text() -> None:
    text = "version = 7\n" + level()
    same = parse_rules(text, "a")
    assert same.version.startswith("7+")
    assert parse_rules("# a comment\n" + text.replace(" = ", "  =  "), "b").version == same.version
    assert parse_rules("version = 7\n" + level(threshold=71.0), "c").version != same.version
    assert parse_rules('version = "2024-06"\n', "d").version.startswith("2024-06+")


def test_an_unreadable_file_is_a_rule_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read the rules file") as caught:
        load_rules(tmp_path / "missing.toml")
    assert isinstance(caught.value, PipelineError)


BAND = {"side": "upper", "op": ">", "resolve_op": "<=", "hysteresis_width": 0.0}
CROSS = {"indicator": "macd", "reference": "macd_signal", "op": ">", "resolve_op": "<="}


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            level("r1", treshold=70.0),
            "rule 'r1': unknown field 'treshold' for kind 'level' (did you mean 'threshold'?)",
        ),
        (rule_text("r1", "levle"), "rule 'r1': unknown kind 'levle' (did you mean 'level'?)"),
        (
            level("r1", indicator="rsii"),
            "rule 'r1': unknown indicator 'rsii' in indicator (did you mean 'rsi'?)",
        ),
        (level("r1", op="=>"), "rule 'r1': unknown operator '=>' in op"),
        (level("r1", resolve_op="=<"), "rule 'r1': unknown operator '=<' in resolve_op"),
        (level("r1", threshold=None), "rule 'r1': missing field 'threshold' (kind 'level')"),
        (
            level("r1", resolve=75.0),
            "rule 'r1': hysteresis on the wrong side: resolve 75 is above threshold 70 (op '>')",
        ),
        (
            level("r1", op="<", threshold=30.0, resolve_op=">", resolve=25.0),
            "rule 'r1': hysteresis on the wrong side: resolve 25 is below threshold 30",
        ),
        (level("r1", resolve_op=">"), "rule 'r1': resolve_op '>' points the same way as op '>'"),
        (
            level("r1", op=">=", resolve_op="<=", resolve=70.0),
            "rule 'r1': resolve equals threshold 70 and both '>=' and '<=' include it",
        ),
        (level("r1", threshold="70"), "rule 'r1': threshold must be a finite number"),
        (level("r1", severity="urgent"), "rule 'r1': unknown severity 'urgent'"),
        (level("r1", intervals=["1D"]), "rule 'r1': unknown interval '1D' (did you mean '1d'?)"),
        (level("r1", symbols=["*", "AAPL"]), "rule 'r1': symbols: \"*\" already matches"),
        (level("r1", symbols=[]), "rule 'r1': symbols must be a non-empty list of strings"),
        (level("r1", cooldown_bars=-1), "rule 'r1': cooldown_bars must be a whole number"),
        (level("r1", id=None), "rule #1: missing field 'id'"),
        (level("r 1"), "rule 'r 1': id must be 1-64 letters"),
        (
            rule_text("r1", "band", **{**BAND, "op": "<"}),
            "rule 'r1': op '<' does not fit side 'upper' (use > or >=)",
        ),
        (
            rule_text("r1", "band", **{**BAND, "side": "middle"}),
            "rule 'r1': side must be 'upper' or 'lower'",
        ),
        (
            rule_text("r1", "band", **{**BAND, "hysteresis_width": -0.1}),
            "rule 'r1': hysteresis on the wrong side: hysteresis_width must be >= 0",
        ),
        (
            rule_text("r1", "band", **{**BAND, "op": ">="}),
            "rule 'r1': with no hysteresis, op '>=' and resolve_op '<=' cannot both be inclusive",
        ),
        (
            rule_text("r1", "crossing", **{**CROSS, "reference": "macd"}, hysteresis_pct=0.0),
            "rule 'r1': indicator and reference are both 'macd'",
        ),
        (rule_text("r1", "crossing", **CROSS), "rule 'r1': missing field 'hysteresis_pct'"),
        (
            rule_text(
                "r1", "pct_change", bars=0, op=">", threshold=5.0, resolve_op="<", resolve=2.5
            ),
            "rule 'r1': bars must be a whole number of bars from 1 to",
        ),
        (
            rule_text(
                "r1",
                "volume_spike",
                bars=20,
                op=">",
                threshold=3.0,
                resolve_op="<",
                resolve=2.0,
                indicator="rsi",
            ),
            "rule 'r1': unknown field 'indicator' for kind 'volume_spike'",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_the_rule(table: str, expected: str) -> None:
    with pytest.raises(RuleError) as caught:
        ruleset(table)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"test.toml: {expected}")
    assert caught.value.problems == (message,)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version = 1\nrules = [", "test.toml: not valid TOML: "),
        (
            "version = 1\nversoin = 2\n",
            "test.toml: unknown top-level field 'versoin' (did you mean 'version'?)",
        ),
        ("", "test.toml: `version` must be a number or a string, got None"),
        ("version = 1\nrules = 3\n", "test.toml: `rules` must be an array of tables"),
    ],
)
def test_file_level_mistakes(text: str, expected: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules(text, "test.toml")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(expected)


def test_every_problem_is_reported_each_naming_its_rule() -> None:
    with pytest.raises(RuleError) as caught:
        ruleset(level("a", op="=>"), level("b"), level("b"), level("c", indicator="rsj"))
    assert caught.value.problems == (
        "test.toml: rule 'a': unknown operator '=>' in op (one of >, >=, <, <=)",
        "test.toml: rule 'b': the id is used by an earlier rule",
        "test.toml: rule 'c': unknown indicator 'rsj' in indicator (did you mean 'rsi'?)",
    )
    assert str(caught.value) == "; ".join(caught.value.problems)


def test_a_file_with_no_rules_is_valid() -> None:
    assert parse_rules("version = 1\n", "empty").rules == ()
