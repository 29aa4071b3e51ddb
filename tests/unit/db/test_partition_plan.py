"""The pure partition planner: aligned spans, what to create, what retention may drop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from db.partition_plan import (
    Span,
    add_months,
    expired,
    partition_name,
    plan_creates,
    retention_cutoff,
    span_of,
    spans_ahead,
    uncovered,
)


def utc(year: int, month: int, day: int = 1, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def month(year: int, number: int) -> Span:
    return Span(utc(year, number), add_months(utc(year, number), 1))


def test_a_span_is_the_aligned_month_or_months_holding_the_instant_in_utc() -> None:
    assert span_of(utc(2024, 6, 30, 23), 1) == month(2024, 6)
    # 2024-07-01 01:00 in Berlin is 2024-06-30 23:00 UTC: June.
    assert span_of(datetime(2024, 7, 1, 1, tzinfo=ZoneInfo("Europe/Berlin")), 1) == month(2024, 6)
    assert span_of(utc(2024, 8, 15), 3) == Span(utc(2024, 7), utc(2024, 10))
    assert span_of(utc(2024, 12, 31, 23), 12) == Span(utc(2024, 1), utc(2025, 1))
    assert span_of(utc(2024, 12, 31, 23), 1) == Span(utc(2024, 12), utc(2025, 1))


def test_partitions_ahead_cross_a_year_end() -> None:
    assert spans_ahead(utc(2024, 11, 20), 1, 2) == [
        month(2024, 11),
        month(2024, 12),
        month(2025, 1),
    ]


def test_a_table_never_written_gets_no_partitions_ahead() -> None:
    assert plan_creates([], utc(2024, 11, 20), 1, 2) == []
    assert plan_creates([], utc(2024, 11, 20), 1, 1, [utc(2024, 3, 5)]) == [
        month(2024, 3),
        month(2024, 11),
        month(2024, 12),
    ]


def test_only_what_no_existing_partition_covers_is_created() -> None:
    existing = [month(2024, 11), Span(utc(2024, 12, 15), utc(2025, 1))]
    assert plan_creates(existing, utc(2024, 11, 20), 1, 2) == [
        Span(utc(2024, 12), utc(2024, 12, 15)),
        month(2025, 1),
    ]
    # A quarter asked for over existing months: only the gaps.
    assert uncovered(Span(utc(2024, 10), utc(2025, 1)), [month(2024, 11)]) == [
        month(2024, 10),
        month(2024, 12),
    ]
    first = plan_creates([month(2024, 11)], utc(2024, 11, 20), 1, 2)
    assert plan_creates([month(2024, 11), *first], utc(2024, 11, 20), 1, 2) == []


def test_rows_waiting_in_the_default_get_their_own_span() -> None:
    creates = plan_creates(
        [month(2024, 11)], utc(2024, 11, 20), 1, 0, [utc(2020, 3), utc(2024, 11)]
    )
    assert creates == [month(2020, 3)]


def test_retention_drops_a_partition_only_when_its_newest_possible_row_is_past_the_cutoff() -> None:
    partitions = [month(2025, 1), month(2025, 2), month(2025, 3)]
    exactly = utc(2025, 3)  # February's upper bound
    assert expired(partitions, exactly) == [month(2025, 1), month(2025, 2)]
    assert expired(partitions, exactly - timedelta(microseconds=1)) == [month(2025, 1)]
    assert expired(partitions, None) == []
    assert retention_cutoff(utc(2025, 3, 31), 30) == utc(2025, 3, 1)
    assert retention_cutoff(utc(2025, 3, 31), None) is None


def test_partition_names_carry_their_first_day() -> None:
    assert partition_name("price_bars_1m", month(2024, 6)) == "price_bars_1m_p20240601"
