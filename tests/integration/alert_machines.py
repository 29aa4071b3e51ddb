"""Expected alert transitions written out plainly, to check the rule engine's rows against."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from analytics.alerts.store import AlertRow

Value = float | None
Events = list[tuple[datetime, str]]

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def alert_row(
    machine: str, day: int, state: str = "firing", *, historical: bool = False
) -> AlertRow:
    """An RSI event of `machine` (its fingerprint; the symbol is the part before a `-`) on day
    `day` after T0, written directly (tests of the alert table's inserts and of its delivery)."""
    symbol = machine.split("-")[0]
    return AlertRow(
        fingerprint=hashlib.md5(machine.encode()).hexdigest(),  # noqa: S324 (an id, not security)
        rule_id=f"rule-{machine}",
        rules_version="v1",
        severity="warning",
        symbol=symbol,
        interval="1d",
        state=state,  # type: ignore[arg-type]
        value=71.5,
        threshold=70.0,
        message=f"{symbol} 1d RSI 71.5 > 70 ({machine})",
        bar_ts=T0 + timedelta(days=day),
        historical=historical,
    )


def machine(
    stamps: list[datetime],
    values: list[Value],
    fire: Callable[[float], bool],
    resolve: Callable[[float], bool],
    cooldown: int = 0,
) -> Events:
    """The expected transitions of one level machine, written out plainly (not the engine):
    fire when quiet and past the cooldown, resolve when firing; None changes nothing."""
    firing, events, resolved_at = False, [], -(10**9)
    for i, (ts, value) in enumerate(zip(stamps, values, strict=True)):
        if value is None or math.isnan(value):
            continue
        if not firing and i > resolved_at + cooldown and fire(value):
            firing = True
            events.append((ts, "firing"))
        elif firing and resolve(value):
            firing = False
            resolved_at = i
            events.append((ts, "resolved"))
    return events
