"""Hand-made rules and bars for the alert engine's tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from analytics.alerts.engine import AlertState, BarFacts, Transition, evaluate
from analytics.alerts.rules import RuleSet, parse_rules
from analytics.indicators import IndicatorValues

START = datetime(2024, 1, 2, tzinfo=UTC)
DEFAULT_FILE = Path(__file__).resolve().parents[4] / "rules" / "alerts.toml"
NO_INDICATORS = dict.fromkeys(IndicatorValues._fields)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # strings and lists of strings are valid TOML this way


def rule_text(rule_id: str, kind: str, **fields: Any) -> str:
    """One [[rules]] table; common fields default to every symbol and interval."""
    table: dict[str, Any] = {
        "id": rule_id,
        "kind": kind,
        "severity": "warning",
        "symbols": ["*"],
        "intervals": ["*"],
    }
    table.update(fields)
    body = "".join(f"{key} = {toml_value(v)}\n" for key, v in table.items() if v is not None)
    return f"[[rules]]\n{body}\n"


def ruleset(*tables: str, version: int = 1) -> RuleSet:
    return parse_rules(f"version = {version}\n\n" + "".join(tables), "test.toml")


def level(rule_id: str = "rsi_high", **fields: Any) -> str:
    base = {"indicator": "rsi", "op": ">", "threshold": 70.0, "resolve_op": "<", "resolve": 65.0}
    return rule_text(rule_id, "level", **{**base, **fields})


def facts(
    bar: int,
    close: float = 100.0,
    *,
    volume: int = 1000,
    basis: float = 1.0,
    symbol: str = "AAPL",
    interval: str = "1d",
    **indicators: float | None,
) -> BarFacts:
    values = {**NO_INDICATORS, **indicators}
    return BarFacts(symbol, interval, START + timedelta(days=bar), close, volume, basis, values)


def run(
    rules: RuleSet, bars: list[BarFacts], state: AlertState | None = None
) -> list[tuple[int, str, str]]:
    """(bar index, rule id, new state) of every transition over `bars`."""
    state = AlertState() if state is None else state
    out = []
    for index, bar in enumerate(bars):
        out += [(index, t.rule_id, t.state) for t in evaluate(rules, state, bar)]
    return out


def transitions(rules: RuleSet, bars: list[BarFacts]) -> list[Transition]:
    state = AlertState()
    return [t for bar in bars for t in evaluate(rules, state, bar)]
