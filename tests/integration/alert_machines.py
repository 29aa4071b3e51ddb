"""Expected alert transitions written out plainly, to check the rule engine's rows against."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

Value = float | None
Events = list[tuple[datetime, str]]


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
