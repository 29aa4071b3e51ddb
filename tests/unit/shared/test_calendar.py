"""shared.calendar: sessions across DST, half-days and holidays, and session dates of bars."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.calendar import ExchangeCalendar, get_calendar


@pytest.fixture(scope="module")
def xnys() -> ExchangeCalendar:
    return get_calendar("XNYS")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "opens", "closes"),
    [
        # DST starts Sunday 2024-03-10: New York 09:30 is 14:30Z before, 13:30Z after.
        (date(2024, 3, 8), utc(2024, 3, 8, 14, 30), utc(2024, 3, 8, 21)),
        (date(2024, 3, 11), utc(2024, 3, 11, 13, 30), utc(2024, 3, 11, 20)),
        # DST ends Sunday 2024-11-03.
        (date(2024, 11, 1), utc(2024, 11, 1, 13, 30), utc(2024, 11, 1, 20)),
        (date(2024, 11, 4), utc(2024, 11, 4, 14, 30), utc(2024, 11, 4, 21)),
        # The day after Thanksgiving closes at 13:00 New York.
        (date(2024, 11, 29), utc(2024, 11, 29, 14, 30), utc(2024, 11, 29, 18)),
    ],
)
def test_session_open_and_close(
    xnys: ExchangeCalendar, day: date, opens: datetime, closes: datetime
) -> None:
    session = xnys.session(day)
    assert session is not None
    assert (session.open, session.close) == (opens, closes)


@pytest.mark.parametrize("day", [date(2024, 7, 4), date(2024, 3, 10), date(2024, 12, 25)])
def test_no_session_on_holidays_and_weekends(xnys: ExchangeCalendar, day: date) -> None:
    assert xnys.session(day) is None


def test_daily_bar_stamped_at_regular_market_time_keeps_its_session_date(
    xnys: ExchangeCalendar,
) -> None:
    # chart_AAPL_1d_6mo_*: the last bar is stamped 2025-10-29 20:00:01Z, the previous ones at
    # the 13:30Z open; both belong to their New York date.
    assert xnys.session_date(utc(2025, 10, 29, 20, 0, 1)) == date(2025, 10, 29)
    assert xnys.session_date(utc(2025, 10, 28, 13, 30)) == date(2025, 10, 28)
    # In winter 20:00:01Z is 15:00 New York, still the same session; 00:30Z is the day before.
    assert xnys.session_date(utc(2020, 12, 31, 21, 0, 3)) == date(2020, 12, 31)
    assert xnys.session_date(utc(2021, 1, 1, 0, 30)) == date(2020, 12, 31)


def test_session_at_is_regular_hours_only(xnys: ExchangeCalendar) -> None:
    assert xnys.session_at(utc(2024, 11, 29, 17, 59)) is not None
    assert xnys.session_at(utc(2024, 11, 29, 18, 0)) is None  # half-day closed
    assert xnys.session_at(utc(2024, 10, 3, 20, 0)) is None  # Yahoo's trailing point: the close
    assert xnys.session_at(utc(2024, 10, 3, 13, 29)) is None  # pre-market


def test_reaches_back_to_recorded_history(xnys: ExchangeCalendar) -> None:
    # chart_TSLA_1d_2010-06-29_2023-08-11.json begins here; the library's default start would not.
    assert xnys.session(date(2010, 6, 29)) is not None
    with pytest.raises(ValueError, match="outside the XNYS calendar"):
        xnys.session(date(1990, 1, 2))


def test_calendar_is_built_once() -> None:
    assert get_calendar("XNYS") is get_calendar("XNYS")


def test_naive_timestamps_are_refused(xnys: ExchangeCalendar) -> None:
    with pytest.raises(ValueError, match="naive"):
        xnys.session_date(datetime(2024, 10, 2, 14, 0))
