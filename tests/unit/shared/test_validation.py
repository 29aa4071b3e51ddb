"""Validation: each rule rejects with its reason, right at its boundary; real messages pass."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from shared import schemas
from shared.errors import ValidationError
from shared.schemas import (
    Article,
    Bar,
    CorporateAction,
    DeadLetter,
    Instrument,
    MacroObservation,
    MacroSeries,
    decode,
)
from shared.validation import VALIDATORS, check_storable, validate, validate_bar
from tests.unit.shared.test_schemas import make_bar

TS = datetime(2024, 10, 2, 13, 30, tzinfo=UTC)
NUL_TEXT = "a\x00b"
NUL_REASON = "{} contains a NUL character (PostgreSQL text cannot hold it)"
YEAR_REASON = "{} {} is outside 1900-01-01..2200-12-31"
BIG_REASON = "{} {!r} exceeds 1e+150 in magnitude (its square would overflow)"
BIGINT_REASON = "{} {} does not fit a signed 64-bit integer (bigint)"
JUST_ABOVE = 1.0000001e150


def make_article(**changes: Any) -> Article:
    article = Article(
        event_id="e1",
        source="finnhub",
        symbol="AAPL",
        id="131239482",
        published_at=TS,
        headline="Apple unveils a thing",
        summary="A thing was unveiled.",
        publisher="Reuters",
        url="https://example.com/a",
        category="company",
        sentiment=0.25,
    )
    return msgspec.structs.replace(article, **changes)


def make_action(**changes: Any) -> CorporateAction:
    action = CorporateAction(
        event_id="e2", source="yahoo", symbol="AAPL", ts=TS, kind="split", ratio=4.0, amount=0.25
    )
    return msgspec.structs.replace(action, **changes)


def make_instrument(**changes: Any) -> Instrument:
    instrument = Instrument(
        event_id="e3",
        source="yahoo",
        symbol="AAPL",
        as_of=TS,
        name="Apple Inc.",
        exchange="NMS",
        currency="USD",
        sector="Technology",
        industry="Consumer Electronics",
        market_cap=3.4e12,
        pe_ratio=-12.5,
        dividend_yield=0.0044,
        high_52w=237.23,
        low_52w=164.08,
    )
    return msgspec.structs.replace(instrument, **changes)


def make_observation(**changes: Any) -> MacroObservation:
    observation = MacroObservation(
        event_id="e4",
        source="fred",
        series_id="UNRATE",
        obs_date=date(2024, 9, 1),
        realtime_start=date(2024, 10, 4),
        value=-4.1,
        series=MacroSeries(
            title="Unemployment Rate",
            units="Percent",
            frequency="Monthly",
            seasonal_adjustment="Seasonally Adjusted",
            last_updated=TS,
        ),
    )
    return msgspec.structs.replace(observation, **changes)


def make_dead_letter(**changes: Any) -> DeadLetter:
    letter = DeadLetter(
        service="producer.market",
        source="yahoo",
        reason="close is null",
        key="AAPL",
        payload='{"close": null}',
        created_at=TS,
    )
    return msgspec.structs.replace(letter, **changes)


MAKERS: dict[type[msgspec.Struct], Callable[..., Any]] = {
    Bar: make_bar,
    Article: make_article,
    CorporateAction: make_action,
    Instrument: make_instrument,
    MacroObservation: make_observation,
    DeadLetter: make_dead_letter,
}


def leaf_fields(model: type[msgspec.Struct], prefix: str = "") -> Iterator[tuple[str, mi.Type]]:
    """Every (dotted path, msgspec type) of `model`, optional types unwrapped, structs entered."""
    for field in mi.type_info(model).fields:
        kind = field.type
        if isinstance(kind, mi.UnionType):
            (kind,) = [t for t in kind.types if not isinstance(t, mi.NoneType)]
        if isinstance(kind, mi.StructType):
            yield from leaf_fields(kind.cls, f"{prefix}{field.name}.")
        else:
            yield prefix + field.name, kind


def fields_of(*kinds: type[mi.Type], skip: tuple[str, ...] = ()) -> list[Any]:
    return [
        pytest.param(model, path, id=f"{model.__name__}.{path}")
        for model in MAKERS
        for path, kind in leaf_fields(model)
        if isinstance(kind, kinds) and f"{model.__name__}.{path}" not in skip
    ]


def replace_path(message: Any, path: str, value: Any) -> Any:
    head, _, rest = path.partition(".")
    if rest:
        value = replace_path(getattr(message, head), rest, value)
    return msgspec.structs.replace(message, **{head: value})


def rejection(message: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        validate(message)
    return str(caught.value)


# --- Every schema --------------------------------------------------------------------------


def test_every_schema_has_a_validator_and_a_test_message() -> None:
    tagged = {
        value
        for value in vars(schemas).values()
        if isinstance(value, type)
        and issubclass(value, msgspec.Struct)
        and value.__struct_config__.tag is not None
    }
    assert set(VALIDATORS) == tagged == set(MAKERS)


def test_every_field_has_a_type_the_storage_checks_know() -> None:
    known = (mi.StrType, mi.IntType, mi.FloatType, mi.DateTimeType, mi.DateType)
    unknown = [(m, p, k) for m in MAKERS for p, k in leaf_fields(m) if not isinstance(k, known)]
    assert unknown == []


@pytest.mark.parametrize("model", MAKERS)
def test_good_messages_pass(model: type[msgspec.Struct]) -> None:
    validate(MAKERS[model]())


@pytest.mark.parametrize(("model", "path"), fields_of(mi.StrType))
def test_nul_in_any_text_field_is_rejected(model: type[msgspec.Struct], path: str) -> None:
    reason = rejection(replace_path(MAKERS[model](), path, NUL_TEXT))
    if (model, path) == (Bar, "interval"):
        assert reason == "unknown interval 'a\\x00b'"  # only known intervals pass anyway
    else:
        assert reason == NUL_REASON.format(path)


# The first and last moments accepted, and the nearest ones outside, per field type.
INSIDE = {
    mi.DateType: (date(1900, 1, 1), date(2200, 12, 31)),
    mi.DateTimeType: (
        datetime(1900, 1, 1, tzinfo=UTC),
        datetime(2200, 12, 31, 23, 59, 59, 999999, UTC),
    ),
}
OUTSIDE = {
    mi.DateType: (date(1899, 12, 31), date(2201, 1, 1)),
    mi.DateTimeType: (
        datetime(1899, 12, 31, 23, 59, 59, 999999, UTC),
        datetime(2201, 1, 1, tzinfo=UTC),
    ),
}


def moments(
    table: dict[type[mi.Type], tuple[date, date]], model: type, path: str
) -> tuple[date, date]:
    return table[type(dict(leaf_fields(model))[path])]


@pytest.mark.parametrize(("model", "path"), fields_of(mi.DateTimeType, mi.DateType))
@pytest.mark.parametrize("side", [0, 1], ids=["before", "after"])
def test_timestamps_and_dates_outside_1900_to_2200_are_rejected(
    model: type[msgspec.Struct], path: str, side: int
) -> None:
    value = moments(OUTSIDE, model, path)[side]
    reason = rejection(replace_path(MAKERS[model](), path, value))
    assert reason == YEAR_REASON.format(path, value.isoformat())


# Bars have their own rules for time (clock skew, session dates): their bounds are tested below.
@pytest.mark.parametrize(
    ("model", "path"),
    fields_of(mi.DateTimeType, mi.DateType, skip=("Bar.ts", "Bar.fetched_at")),
)
def test_timestamps_and_dates_on_the_bounds_pass(model: type[msgspec.Struct], path: str) -> None:
    for value in moments(INSIDE, model, path):
        validate(replace_path(MAKERS[model](), path, value))


# Bars' prices must be positive and ordered: tested with bars below.
NUMBERS = fields_of(mi.FloatType, skip=tuple(f"Bar.{name}" for name in Bar.__struct_fields__))


# Sentiment lies in [-1, 1]: tested with articles below.
@pytest.mark.parametrize(("model", "path"), [p for p in NUMBERS if p.id != "Article.sentiment"])
def test_numbers_up_to_1e150_in_magnitude_pass(model: type[msgspec.Struct], path: str) -> None:
    for value in (1e150, -1e150, 0.0):
        validate(replace_path(MAKERS[model](), path, value))


@pytest.mark.parametrize(("model", "path"), NUMBERS)
@pytest.mark.parametrize("value", [JUST_ABOVE, -JUST_ABOVE, 1e300])
def test_numbers_beyond_1e150_in_magnitude_are_rejected(
    model: type[msgspec.Struct], path: str, value: float
) -> None:
    reason = rejection(replace_path(MAKERS[model](), path, value))
    assert reason == BIG_REASON.format(path, value)


@pytest.mark.parametrize(("model", "path"), NUMBERS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_numbers_that_are_not_finite_are_rejected(
    model: type[msgspec.Struct], path: str, value: float
) -> None:
    reason = rejection(replace_path(MAKERS[model](), path, value))
    assert reason == f"{path} must be a finite number, got {value!r}"


class Counted(msgspec.Struct):
    count: int


@pytest.mark.parametrize("count", [2**63 - 1, -(2**63), 0])
def test_integers_within_bigint_pass(count: int) -> None:
    check_storable(Counted(count))


@pytest.mark.parametrize("count", [2**63, -(2**63) - 1])
def test_integers_outside_bigint_are_rejected(count: int) -> None:
    with pytest.raises(ValidationError) as caught:
        check_storable(Counted(count))
    assert str(caught.value) == BIGINT_REASON.format("count", count)


# --- Article and CorporateAction domain rules ------------------------------------------------


@pytest.mark.parametrize("sentiment", [-1.0, 1.0])
def test_sentiment_on_its_bounds_passes(sentiment: float) -> None:
    validate(make_article(sentiment=sentiment))


@pytest.mark.parametrize("sentiment", [1.5, -1.0000001])
def test_sentiment_outside_its_range_is_rejected(sentiment: float) -> None:
    reason = rejection(make_article(sentiment=sentiment))
    assert reason == f"sentiment {sentiment!r} outside [-1, 1]"


@pytest.mark.parametrize("kind", ["split", "dividend"])
def test_known_action_kinds_pass(kind: str) -> None:
    validate(make_action(kind=kind))


def test_unknown_action_kind_is_rejected() -> None:
    assert rejection(make_action(kind="merger")) == "unknown corporate action kind 'merger'"


def test_observation_without_value_or_series_passes() -> None:
    validate(make_observation(value=None, series=None))
    validate(make_observation(series=MacroSeries()))


# --- Bars ----------------------------------------------------------------------------------


def test_a_good_bar_passes() -> None:
    validate_bar(make_bar())


def test_daily_bar_keyed_by_session_date_passes() -> None:
    validate_bar(make_bar(interval="1d", ts=datetime(2020, 1, 2, tzinfo=UTC)))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"high": 225.0}, "high 225.0 is below open/close/low (225.6999969482422/225.75/225.5)"),
        ({"low": 225.8}, "low 225.8 is above open/close (225.6999969482422/225.75)"),
        ({"open": math.nan}, "open must be a positive finite number, got nan"),
        ({"close": -1.0}, "close must be a positive finite number, got -1.0"),
        ({"adj_close": math.inf}, "adj_close must be a positive finite number, got inf"),
        ({"volume": -5}, "volume must not be negative, got -5"),
        ({"split_basis": 0.0}, "split_basis must be a positive finite number, got 0.0"),
        ({"interval": "7m"}, "unknown interval '7m'"),
        ({"symbol": ""}, "bad symbol ''"),
        ({"symbol": " AAPL"}, "bad symbol ' AAPL'"),
        ({"symbol": "AA\x00PL"}, NUL_REASON.format("symbol")),
        (
            {"interval": "1d"},
            "daily bar must be keyed by its session date, got 2024-10-02 13:30:00+00:00",
        ),
        (
            {"ts": datetime(2030, 1, 1, tzinfo=UTC)},
            "bar at 2030-01-01 00:00:00+00:00 is later than its fetch time "
            "2024-10-02 13:30:00+00:00",
        ),
        ({"fetched_at": datetime(2024, 10, 2, 13, 30)}, "timestamps must carry a time zone"),
    ],
)
def test_each_bar_rule_rejects_with_its_reason(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_bar(make_bar(**changes))
    assert str(caught.value) == reason


def test_volume_up_to_the_bigint_maximum_passes() -> None:
    validate_bar(make_bar(volume=2**63 - 1))


@pytest.mark.parametrize(
    ("volume", "shown"), [(2**63, "9223372036854775808"), (10**4000, "of 13288 bits")]
)
def test_volume_above_the_bigint_maximum_is_rejected(volume: int, shown: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_bar(make_bar(volume=volume))
    assert str(caught.value) == BIGINT_REASON.format("volume", shown)


def at_the_bound(**changes: float) -> Bar:
    prices = dict.fromkeys(("open", "high", "low", "close", "adj_close", "split_basis"), 1e150)
    return make_bar(**{**prices, **changes})


def test_bar_prices_up_to_1e150_pass() -> None:
    validate_bar(at_the_bound())


@pytest.mark.parametrize("name", ["open", "high", "low", "close", "adj_close", "split_basis"])
def test_bar_price_beyond_1e150_is_rejected(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_bar(at_the_bound(**{name: JUST_ABOVE}))
    assert str(caught.value) == BIG_REASON.format(name, JUST_ABOVE)


def test_bar_timestamps_on_the_bounds_pass() -> None:
    first = datetime(1900, 1, 1, tzinfo=UTC)
    validate_bar(make_bar(ts=first, fetched_at=first))
    last_day = datetime(2200, 12, 31, tzinfo=UTC)
    validate_bar(make_bar(interval="1d", ts=last_day, fetched_at=last_day.replace(hour=23)))


# --- From raw JSON, as the consumers see it -------------------------------------------------

RAW_BAR = (
    b'{"schema":"market.bar/1","event_id":"e0","source":"yahoo","symbol":"%s","interval":"1m",'
    b'"ts":"2024-10-02T13:30:00Z","open":225.7,"high":226.0,"low":225.5,"close":225.75,'
    b'"adj_close":null,"volume":%s,"split_basis":1.0,"fetched_at":"2024-10-02T13:31:00Z"}'
)


def test_volume_beyond_bigint_decodes_and_is_then_rejected() -> None:
    # msgspec decodes any int of up to 4300 digits: only validation stands before the COPY.
    bar = decode(RAW_BAR % (b"AAPL", b"9223372036854775808"), Bar)
    assert bar.volume == 2**63
    with pytest.raises(ValidationError) as caught:
        validate_bar(bar)
    assert str(caught.value) == BIGINT_REASON.format("volume", 2**63)
    validate_bar(decode(RAW_BAR % (b"AAPL", b"9223372036854775807"), Bar))


def test_nul_escape_decodes_to_a_nul_character_and_is_then_rejected() -> None:
    bar = decode(RAW_BAR % (b"AA\\u0000PL", b"100"), Bar)
    assert bar.symbol == "AA\x00PL"
    with pytest.raises(ValidationError) as caught:
        validate(bar)
    assert str(caught.value) == NUL_REASON.format("symbol")

    raw = msgspec.json.encode(make_observation()).replace(b"Percent", b"Per\\u0000cent")
    observation = decode(raw, MacroObservation)
    assert observation.series is not None and observation.series.units == "Per\x00cent"
    assert rejection(observation) == NUL_REASON.format("series.units")
