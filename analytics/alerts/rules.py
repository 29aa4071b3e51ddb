"""Alert rules: the versioned TOML rules file, parsed and validated into an immutable RuleSet.

Every rule compares one measured value with a fire level and, on the way back, a resolve level
(its hysteresis); both comparisons name their operator, so each says whether it is inclusive
(`>` fires above 70 but not at 70, `>=` fires at 70 too). What is measured, per kind:

- `level`: an indicator or `close` vs `threshold` / `resolve`.
- `band`: close vs `bb_upper` (`side = "upper"`) or `bb_lower`; it resolves once close is back
  inside by `hysteresis_width` × the band width (bb_upper − bb_lower).
- `crossing`: an indicator vs a `reference` indicator (macd vs macd_signal), as a level; it
  resolves once past the reference by `hysteresis_pct` percent of close.
- `pct_change`: 100 × (close / close `bars` bars ago − 1) vs signed `threshold` / `resolve`.
- `volume_spike`: volume / mean volume of the previous `bars` bars (the current bar excluded).
- `forecast_breach`: close vs the 95% interval's upper or lower bound (`side`) of the forecast
  step that targets the bar; resolves `hysteresis_width` × the interval's width back inside.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from analytics.alerts import fields as F
from shared.errors import PipelineError
from shared.validation import INTERVALS

T = TypeVar("T")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_COMMON_REQUIRED = ("id", "kind", "severity", "symbols", "intervals")
_COMMON_OPTIONAL = ("cooldown_bars", "description")
_TOP_LEVEL = frozenset({"version", "rules"})
_DIRECTIONS = {"pct_change": ("up", "down")}  # (upward, downward) machine keys; else above/below


class RuleError(PipelineError):
    """The rules file is unusable. Each problem is one line naming the rule and what is wrong;
    the message joins them with "; " (still one line), `problems` lists them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class Rule:
    """One validated rule. `parameters` holds its kind's fields (numbers as floats); two rules
    are equal when every field is, and `digest` (16 hex) identifies that content."""

    id: str
    kind: str
    severity: str
    symbols: tuple[str, ...]  # ("*",) matches every symbol
    intervals: tuple[str, ...]  # ("*",) matches every interval
    parameters: dict[str, Any]  # never mutated: `digest` is computed from it
    cooldown_bars: int = 0
    description: str = ""
    digest: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        object.__setattr__(self, "digest", hashlib.sha256(canonical.encode()).hexdigest()[:16])

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "symbols": list(self.symbols),
            "intervals": list(self.intervals),
            "parameters": dict(self.parameters),
            "cooldown_bars": self.cooldown_bars,
            "description": self.description,
        }

    def applies_to(self, symbol: str, interval: str) -> bool:
        return (self.symbols == ("*",) or symbol in self.symbols) and (
            self.intervals == ("*",) or interval in self.intervals
        )

    @property
    def upward(self) -> bool:
        """Whether it fires when the value rises past the fire level (op `>` or `>=`)."""
        return self.parameters["op"] in F.UPWARD

    @property
    def direction(self) -> str:
        """The machine key: upper/lower (band, forecast_breach), up/down (pct_change), else
        above/below."""
        if "side" in self.parameters:
            return self.parameters["side"]
        up, down = _DIRECTIONS.get(self.kind, ("above", "below"))
        return up if self.upward else down

    @property
    def window(self) -> int:
        """Previous bars this rule looks back on (pct_change, volume_spike), else 0."""
        return self.parameters.get("bars", 0)


@dataclass(frozen=True)
class RuleSet:
    """The rules of one file, in file order. `version` is the file's `version` field plus a
    short hash of the rules' content (`3+1f2e3d4c`): a comment-only edit keeps it."""

    rules: tuple[Rule, ...]
    version: str
    source: str = ""
    _by_id: dict[str, Rule] = field(init=False, repr=False, compare=False)
    _windows: dict[str, int] = field(init=False, repr=False, compare=False)
    # (symbol, interval) -> the bar rules (all kinds but forecast_breach) that apply to it, in
    # file order; filled on first use (one entry per series).
    _bar_rules: dict[tuple[str, str], tuple[Rule, ...]] = field(
        init=False, repr=False, compare=False
    )
    # (symbol, interval) -> the engine's compiled form of its bar rules (see `compiled`).
    _compiled: dict[tuple[str, str], Any] = field(init=False, repr=False, compare=False)
    # The closes and volumes windows a series keeps (window("pct_change"),
    # window("volume_spike")): read on every bar.
    history: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Looked up on every bar: computed once.
        object.__setattr__(self, "_by_id", {rule.id: rule for rule in self.rules})
        windows: dict[str, int] = {}
        for rule in self.rules:
            windows[rule.kind] = max(windows.get(rule.kind, 0), rule.window)
        object.__setattr__(self, "_windows", windows)
        history = (windows.get("pct_change", 0), windows.get("volume_spike", 0))
        object.__setattr__(self, "history", history)
        object.__setattr__(self, "_bar_rules", {})
        object.__setattr__(self, "_compiled", {})

    def get(self, rule_id: str) -> Rule | None:
        return self._by_id.get(rule_id)

    def window(self, kind: str) -> int:
        """The most previous bars any rule of `kind` needs."""
        return self._windows.get(kind, 0)

    def bar_rules(self, symbol: str, interval: str) -> tuple[Rule, ...]:
        """The rules a bar of (symbol, interval) is evaluated against, forecast_breach aside."""
        found = self._bar_rules.get((symbol, interval))
        if found is None:
            found = tuple(
                rule
                for rule in self.rules
                if rule.kind != "forecast_breach" and rule.applies_to(symbol, interval)
            )
            self._bar_rules[(symbol, interval)] = found
        return found

    def compiled(
        self, symbol: str, interval: str, compile_rules: Callable[[tuple[Rule, ...]], T]
    ) -> T:
        """`compile_rules(bar_rules(symbol, interval))`, made once per series and rules (the
        engine's per-bar form of the rules; one compiler per RuleSet)."""
        found = self._compiled.get((symbol, interval))
        if found is None:
            found = self._compiled[(symbol, interval)] = compile_rules(
                self.bar_rules(symbol, interval)
            )
        return found


def load_rules(path: Path) -> RuleSet:
    """Read and validate the rules file; RuleError (one line per problem) if it is not usable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError([f"{path}: cannot read the rules file: {exc}"]) from exc
    return parse_rules(text, str(path))


def parse_rules(text: str, source: str) -> RuleSet:
    """Parse and validate rules-file text; `source` names it in error messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError([f"{source}: not valid TOML: {exc}"]) from exc
    problems = [
        f"{source}: unknown top-level field {key!r}{F.hint(key, _TOP_LEVEL)}"
        for key in document
        if key not in _TOP_LEVEL
    ]
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int | str) or version == "":
        problems.append(f"{source}: `version` must be a number or a string, got {version!r}")
    tables = document.get("rules", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        problems.append(f"{source}: `rules` must be an array of tables ([[rules]])")
        tables = []
    rules: list[Rule] = []
    for index, table in enumerate(tables, start=1):
        name = f"rule {table['id']!r}" if isinstance(table.get("id"), str) else f"rule #{index}"
        try:
            rule = _parse_rule(table)
        except F.Problem as problem:
            problems.append(f"{source}: {name}: {problem}")
            continue
        if any(seen.id == rule.id for seen in rules):
            problems.append(f"{source}: {name}: the id is used by an earlier rule")
        rules.append(rule)
    if problems:
        raise RuleError(problems)
    content = json.dumps([rule.to_json() for rule in rules], sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(content.encode()).hexdigest()[:8]
    return RuleSet(tuple(rules), f"{version}+{digest}", source)


def _parse_rule(table: dict[str, Any]) -> Rule:
    kind = table.get("kind")
    if kind not in F.KIND_FIELDS:
        if kind is None:
            raise F.Problem("missing field 'kind'")
        suffix = F.hint(kind, F.KINDS) if isinstance(kind, str) else ""
        raise F.Problem(f"unknown kind {kind!r}{suffix} (one of {', '.join(F.KINDS)})")
    checkers = F.KIND_FIELDS[kind]
    known = (*_COMMON_REQUIRED, *_COMMON_OPTIONAL, *checkers)
    for key in table:
        if key not in known:
            raise F.Problem(f"unknown field {key!r} for kind {kind!r}{F.hint(key, known)}")
    for key in (*_COMMON_REQUIRED, *checkers):
        if key not in table:
            raise F.Problem(f"missing field {key!r} (kind {kind!r})")
    rule_id = table["id"]
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise F.Problem(f"id must be 1-64 letters, digits, '_', '.', '-', got {rule_id!r}")
    severity = table["severity"]
    if severity not in F.SEVERITIES:
        raise F.Problem(f"unknown severity {severity!r} (one of {', '.join(F.SEVERITIES)})")
    cooldown = table.get("cooldown_bars", 0)
    if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
        raise F.Problem(f"cooldown_bars must be a whole number of bars >= 0, got {cooldown!r}")
    description = table.get("description", "")
    if not isinstance(description, str) or "\n" in description:
        raise F.Problem("description must be a one-line string")
    parameters = {key: check(key, table[key]) for key, check in checkers.items()}
    F.check_sides(kind, parameters)
    return Rule(
        rule_id,
        kind,
        severity,
        _names("symbols", table["symbols"], None),
        _names("intervals", table["intervals"], INTERVALS),
        parameters,
        cooldown,
        description,
    )


def _names(key: str, value: Any, allowed: frozenset[str] | None) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise F.Problem(f'{key} must be a non-empty list of strings (["*"] for all)')
    if "*" in value and len(value) > 1:
        raise F.Problem(f'{key}: "*" already matches everything, list it alone')
    for name in value:
        if not name.strip() or name != name.strip():
            raise F.Problem(f"{key}: {name!r} is blank or has spaces around it")
        if allowed is not None and name != "*" and name not in allowed:
            raise F.Problem(f"unknown interval {name!r}{F.hint(name, allowed)}")
    return tuple(value)
