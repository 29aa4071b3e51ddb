"""Validation used by every consumer: a message either passes or names what is wrong with it.

Besides each schema's domain rules, every validator rejects what PostgreSQL (or the indicators'
float arithmetic) cannot hold, so such a message is dead-lettered at decode time instead of
failing the batch's write and crash-looping the consumer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, timedelta
from typing import Any

import msgspec

from shared.errors import ValidationError
from shared.schemas import (
    Article,
    Bar,
    CorporateAction,
    DeadLetter,
    Instrument,
    MacroObservation,
    decode,
)

INTERVALS = frozenset({"1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d"})
ACTION_KINDS = frozenset({"split", "dividend"})
# A bar stamped further than this after it was fetched is from a broken clock, not the market.
_CLOCK_SKEW = timedelta(minutes=5)

# Integers are stored as bigint.
INT8_MIN = -(2**63)
INT8_MAX = 2**63 - 1
# Largest magnitude of a price, amount or value: its square (variance, Bollinger bands) must
# still be a finite float (the largest is ~1.8e308).
MAX_MAGNITUDE = 1e150
# Timestamps and dates from 1900-01-01 to 2200-12-31: anything else is a broken clock or parser.
MIN_YEAR = 1900
MAX_YEAR = 2200
_PRICES = ("open", "high", "low", "close", "adj_close")
# Longest text a field may hold: beyond it a message is garbage (a runaway producer, a fuzzer),
# not data, and is dead-lettered instead of bloating tables and every reader's memory. The one
# exception: the raw API response a producer's dead letter carries (bounded by Kafka's 1 MB).
MAX_TEXT = 65_536
_LARGE_TEXT_FIELDS = frozenset({"payload"})
# A bar's own identifiers are short.
MAX_SOURCE = 64
MAX_EVENT_ID = 128


def validate_bar(bar: Bar) -> None:
    """Raise ValidationError with the first rule `bar` breaks.

    The consumers' hottest path: explicit checks on the fields, no loops or allocations
    (check_storable applies the same storage limits generically to the other schemas).
    """
    # `interval` needs no NUL check: it must be one of INTERVALS.
    if "\x00" in bar.symbol:
        raise ValidationError(_nul_reason("symbol"))
    if "\x00" in bar.source:
        raise ValidationError(_nul_reason("source"))
    if "\x00" in bar.event_id:
        raise ValidationError(_nul_reason("event_id"))
    if not bar.symbol or bar.symbol != bar.symbol.strip() or len(bar.symbol) > 32:
        raise ValidationError(f"bad symbol {_shown_text(bar.symbol)}")
    if len(bar.source) > MAX_SOURCE:
        raise ValidationError(_length_reason("source", bar.source, MAX_SOURCE))
    if len(bar.event_id) > MAX_EVENT_ID:
        raise ValidationError(_length_reason("event_id", bar.event_id, MAX_EVENT_ID))
    if bar.interval not in INTERVALS:
        raise ValidationError(f"unknown interval {_shown_text(bar.interval)}")
    # Each chained comparison is false for NaN, infinities, zero, negatives and huge values.
    if not (
        0 < bar.open <= MAX_MAGNITUDE
        and 0 < bar.high <= MAX_MAGNITUDE
        and 0 < bar.low <= MAX_MAGNITUDE
        and 0 < bar.close <= MAX_MAGNITUDE
        and (bar.adj_close is None or 0 < bar.adj_close <= MAX_MAGNITUDE)
    ):
        raise ValidationError(_price_reason(bar))
    if bar.high < max(bar.open, bar.close, bar.low):
        raise ValidationError(
            f"high {bar.high!r} is below open/close/low ({bar.open!r}/{bar.close!r}/{bar.low!r})"
        )
    if bar.low > min(bar.open, bar.close):
        raise ValidationError(f"low {bar.low!r} is above open/close ({bar.open!r}/{bar.close!r})")
    if bar.volume < 0:
        raise ValidationError(f"volume must not be negative, got {_shown_int(bar.volume)}")
    if bar.volume > INT8_MAX:
        raise ValidationError(_int_reason("volume", bar.volume))
    if not 0 < bar.split_basis <= MAX_MAGNITUDE:
        raise ValidationError(_number_reason("split_basis", bar.split_basis, positive=True))
    ts, fetched_at = bar.ts, bar.fetched_at
    if ts.tzinfo is None or fetched_at.tzinfo is None:
        raise ValidationError("timestamps must carry a time zone")
    if not MIN_YEAR <= ts.year <= MAX_YEAR:
        raise ValidationError(_year_reason("ts", ts))
    if not MIN_YEAR <= fetched_at.year <= MAX_YEAR:
        raise ValidationError(_year_reason("fetched_at", fetched_at))
    if bar.interval == "1d":
        midnight = ts.astimezone(UTC)
        if (midnight.hour, midnight.minute, midnight.second, midnight.microsecond) != (0, 0, 0, 0):
            raise ValidationError(f"daily bar must be keyed by its session date, got {ts}")
    elif ts > fetched_at + _CLOCK_SKEW:
        raise ValidationError(f"bar at {ts} is later than its fetch time {fetched_at}")


def validate_article(article: Article) -> None:
    """Raise ValidationError with the first rule `article` breaks."""
    check_storable(article)
    if not -1.0 <= article.sentiment <= 1.0:
        raise ValidationError(f"sentiment {article.sentiment!r} outside [-1, 1]")


def validate_action(action: CorporateAction) -> None:
    """Raise ValidationError with the first rule `action` breaks."""
    check_storable(action)
    if action.kind not in ACTION_KINDS:
        raise ValidationError(f"unknown corporate action kind {_shown_text(action.kind)}")


def validate_instrument(instrument: Instrument) -> None:
    """Raise ValidationError if `instrument` holds something PostgreSQL cannot store."""
    check_storable(instrument)


def validate_observation(observation: MacroObservation) -> None:
    """Raise ValidationError if `observation` (its series included) cannot be stored."""
    check_storable(observation)


def validate_dead_letter(letter: DeadLetter) -> None:
    """Raise ValidationError if `letter` holds something PostgreSQL cannot store."""
    check_storable(letter)


VALIDATORS: dict[type[msgspec.Struct], Callable[[Any], None]] = {
    Bar: validate_bar,
    Article: validate_article,
    CorporateAction: validate_action,
    Instrument: validate_instrument,
    MacroObservation: validate_observation,
    DeadLetter: validate_dead_letter,
}


def validate(message: msgspec.Struct) -> None:
    """Run the validator of `message`'s schema; raise ValidationError with the first broken rule."""
    VALIDATORS[type(message)](message)


def check_storable(message: msgspec.Struct, prefix: str = "") -> None:
    """Raise ValidationError naming the first field of `message` that PostgreSQL cannot hold.

    Walks every field, nested structs included (named `series.title`): text must not contain
    NUL, integers must fit a bigint, floats must be finite with a magnitude of at most
    MAX_MAGNITUDE, timestamps and dates must lie in years MIN_YEAR..MAX_YEAR. None passes.
    """
    for field in message.__struct_fields__:
        name = prefix + field
        value = getattr(message, field)
        if isinstance(value, str):
            if "\x00" in value:
                raise ValidationError(_nul_reason(name))
            if len(value) > MAX_TEXT and field not in _LARGE_TEXT_FIELDS:
                raise ValidationError(_length_reason(name, value, MAX_TEXT))
        elif isinstance(value, float):
            if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
                raise ValidationError(_number_reason(name, value, positive=False))
        elif isinstance(value, int):
            if not INT8_MIN <= value <= INT8_MAX:
                raise ValidationError(_int_reason(name, value))
        elif isinstance(value, date):  # datetimes included
            if not MIN_YEAR <= value.year <= MAX_YEAR:
                raise ValidationError(_year_reason(name, value))
        elif isinstance(value, msgspec.Struct):
            check_storable(value, f"{name}.")


# Reasons are built only once a rule is broken: a passing message never formats one.


def _nul_reason(name: str) -> str:
    return f"{name} contains a NUL character (PostgreSQL text cannot hold it)"


def _length_reason(name: str, value: str, limit: int) -> str:
    return f"{name} is {len(value)} characters long, more than {limit}"


def _shown_text(value: str) -> str:
    # A rejected text may be megabytes long: show its start and its length.
    return repr(value) if len(value) <= 64 else f"{value[:32]!r}… ({len(value)} characters)"


def _int_reason(name: str, value: int) -> str:
    return f"{name} {_shown_int(value)} does not fit a signed 64-bit integer (bigint)"


def _shown_int(value: int) -> str:
    # A decoded int may have thousands of digits: name its size rather than print it.
    return str(value) if value.bit_length() <= 128 else f"of {value.bit_length()} bits"


def _number_reason(name: str, value: float, *, positive: bool) -> str:
    # Comparisons, not math.isfinite: a value built in code may be an int too large for a float.
    finite = value == value and -math.inf < value < math.inf
    if not finite or (positive and value <= 0):
        kind = "positive finite" if positive else "finite"
        return f"{name} must be a {kind} number, got {value!r}"
    return f"{name} {value!r} exceeds {MAX_MAGNITUDE:g} in magnitude (its square would overflow)"


def _price_reason(bar: Bar) -> str:
    for name in _PRICES:
        value = getattr(bar, name)
        if value is not None and not 0 < value <= MAX_MAGNITUDE:
            return _number_reason(name, value, positive=True)
    return "prices out of range"  # not reached: called only when a price is out of range


def _year_reason(name: str, value: date) -> str:
    return f"{name} {value.isoformat()} is outside {MIN_YEAR}-01-01..{MAX_YEAR}-12-31"


def decode_bar(raw: bytes | None) -> Bar:
    """A `market.bar` message decoded and validated (SchemaError / ValidationError otherwise)."""
    bar = decode(raw, Bar)
    validate_bar(bar)
    return bar
