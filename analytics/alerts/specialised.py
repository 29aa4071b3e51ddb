"""A series' bar rules as one Python function, generated once per distinct rule list.

Why: every rule is read on every bar, and the engine's general form (a probe closure per rule,
a reading tuple, the operators called as functions) spent most of its time on the calls, not
on the comparisons: a third of the analytics consumer's per-bar work at 2,000 bars/s was the
rule engine. The function made here does the same reads and comparisons, in file order, with
the rule's constants and operators written into its code; it only reports which machines move
(`Moves`), and the engine makes their events (`engine._transition`) as before.

Its semantics are those of reading each rule by its probe (readings.probe, `engine.by_probes`),
which stays the reference: tests/unit/analytics/alerts/test_specialised.py checks the two agree
on random bars, states and rule files.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import islice

from analytics.alerts.readings import _INDEX, _width
from analytics.alerts.rules import Rule
from analytics.alerts.state import AlertState, Machine
from analytics.indicators import IndicatorValues

# (index of the rule in its list, value, level compared with, True: fires / False: resolves)
Move = tuple[int, float, float, bool]
# (alert state, close, volume, indicator values, first bar after a split) -> the moves
Moves = Callable[[AlertState, float, int, IndicatorValues, bool], list[Move]]


def specialise(rules: tuple[Rule, ...]) -> Moves:
    """One function reading `rules` (no forecast_breach) on a bar, in their order."""
    constants: dict[str, object] = {"fsum": math.fsum, "islice": islice, "Machine": Machine}
    lines = [
        "def moves(state, close, volume, values, split):",
        "    machines = state.machines",
        "    bars = state.bars",
        "    out = []",
    ]
    for index, rule in enumerate(rules):
        lines.extend(f"    {line}" for line in _rule_lines(index, rule, constants))
    lines.append("    return out")
    namespace: dict[str, object] = dict(constants)
    exec(compile("\n".join(lines), f"<alert rules: {len(rules)}>", "exec"), namespace)  # noqa: S102
    return namespace["moves"]  # type: ignore[return-value]


def _rule_lines(index: int, rule: Rule, constants: dict[str, object]) -> list[str]:
    """The code of one rule: compute `value`, `fire` and `resolve` (or skip the rule), then
    move its machine."""
    p = rule.parameters

    def constant(value: object) -> str:
        # Values are bound by name, never printed into the source: a float stays bit for bit.
        name = f"c{len(constants)}"
        constants[name] = value
        return name

    kind = rule.kind
    if kind == "level":
        fire, resolve = constant(p["threshold"]), constant(p["resolve"])
        if p["indicator"] == "close":
            reading = ["value = close"]
        else:
            reading = [f"value = values[{_INDEX[p['indicator']]}]", "if value is not None:"]
        levels = [f"fire = {fire}", f"resolve = {resolve}"]
    elif kind == "band":
        upper, lower = _INDEX["bb_upper"], _INDEX["bb_lower"]
        reading = [
            f"upper = values[{upper}]",
            f"lower = values[{lower}]",
            "if upper is not None and lower is not None:",
        ]
        edge = "upper" if p["side"] == "upper" else "lower"
        levels = ["value = close", *_beside(edge, "upper - lower", rule, constant)]
    elif kind == "crossing":
        subject = _read(p["indicator"])
        reference = _read(p["reference"])
        reading = [
            f"value = {subject}",
            f"edge = {reference}",
            "if value is not None and edge is not None:",
        ]
        levels = _beside("edge", "close / 100.0", rule, constant)
    elif kind == "pct_change":
        k = int(p["bars"])
        fire, resolve = constant(p["threshold"]), constant(p["resolve"])
        reading = [
            "closes = state.closes",
            f"if state.basis_bars >= {k} and len(closes) >= {k}:",
        ]
        levels = [
            f"value = (close / closes[-{k}] - 1.0) * 100.0",
            f"fire = {fire}",
            f"resolve = {resolve}",
        ]
    elif kind == "volume_spike":
        n = int(p["bars"])
        fire, resolve = constant(p["threshold"]), constant(p["resolve"])
        reading = [
            "volumes = state.volumes",
            f"mean = fsum(islice(volumes, len(volumes) - {n}, None)) / {n}"
            f" if len(volumes) >= {n} else 0.0",
            "if mean > 0.0:",
        ]
        levels = ["value = volume / mean", f"fire = {fire}", f"resolve = {resolve}"]
    else:
        raise ValueError(f"rule {rule.id!r}: kind {kind!r} is not read from a bar's facts")
    rule_id = constant(rule.id)
    fires, resolves = p["op"], p["resolve_op"]
    move = [
        f"machine = machines.get({rule_id})",
        "if machine is None or not machine.firing:",
        f"    if value {fires} fire and (machine is None or "
        f"bars - machine.since_bar > {int(rule.cooldown_bars)}):",
        f"        out.append(({index}, value, fire, True))",
        f"elif value {resolves} resolve:",
        f"    out.append(({index}, value, resolve, False))",
    ]
    body = [*levels, *move]
    if reading[-1].endswith(":"):
        code = [*reading[:-1], reading[-1], *(f"    {line}" for line in body)]
    else:
        code = [*reading, *body]
    if kind == "crossing":  # a crossing does not move on the first bar after a split
        code = ["if not split:", *(f"    {line}" for line in code)]
    # Nothing of the file reaches the code but validated operators and whole numbers: ids,
    # thresholds and widths are bound as constants.
    return [f"# rule {index} ({kind})", *code]


def _read(name: str) -> str:
    return "close" if name == "close" else f"values[{_INDEX[name]}]"


def _beside(edge: str, unit: str, rule: Rule, constant: Callable[[object], str]) -> list[str]:
    """readings._beside: the resolve level lies `width` × `unit` back on the safe side of the
    edge (the edge itself with no width)."""
    width = _width(rule)
    if width == 0.0:
        return [f"fire = {edge}", f"resolve = {edge}"]
    sign = "-" if rule.upward else "+"
    return [f"fire = {edge}", f"resolve = {edge} {sign} {constant(width)} * ({unit})"]
