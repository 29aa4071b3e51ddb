"""Bar validation used by every consumer: a bar either passes or names what is wrong with it."""

from __future__ import annotations

import math
from datetime import UTC, timedelta

from shared.errors import ValidationError
from shared.schemas import Bar

INTERVALS = frozenset({"1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d"})
# A bar stamped further than this after it was fetched is from a broken clock, not the market.
_CLOCK_SKEW = timedelta(minutes=5)


def validate_bar(bar: Bar) -> None:
    """Raise ValidationError with the first rule `bar` breaks."""
    if not bar.symbol or bar.symbol != bar.symbol.strip() or len(bar.symbol) > 32:
        raise ValidationError(f"bad symbol {bar.symbol!r}")
    if bar.interval not in INTERVALS:
        raise ValidationError(f"unknown interval {bar.interval!r}")
    prices = {"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close}
    if bar.adj_close is not None:
        prices["adj_close"] = bar.adj_close
    for name, value in prices.items():
        if not math.isfinite(value) or value <= 0:
            raise ValidationError(f"{name} must be a positive finite number, got {value!r}")
    if bar.high < max(bar.open, bar.close, bar.low):
        raise ValidationError(
            f"high {bar.high!r} is below open/close/low ({bar.open!r}/{bar.close!r}/{bar.low!r})"
        )
    if bar.low > min(bar.open, bar.close):
        raise ValidationError(f"low {bar.low!r} is above open/close ({bar.open!r}/{bar.close!r})")
    if bar.volume < 0:
        raise ValidationError(f"volume must not be negative, got {bar.volume}")
    if not math.isfinite(bar.split_basis) or bar.split_basis <= 0:
        raise ValidationError(f"split_basis must be positive, got {bar.split_basis!r}")
    if bar.ts.tzinfo is None or bar.fetched_at.tzinfo is None:
        raise ValidationError("timestamps must carry a time zone")
    if bar.interval == "1d":
        midnight = bar.ts.astimezone(UTC)
        if (midnight.hour, midnight.minute, midnight.second, midnight.microsecond) != (0, 0, 0, 0):
            raise ValidationError(f"daily bar must be keyed by its session date, got {bar.ts}")
    elif bar.ts > bar.fetched_at + _CLOCK_SKEW:
        raise ValidationError(f"bar at {bar.ts} is later than its fetch time {bar.fetched_at}")
