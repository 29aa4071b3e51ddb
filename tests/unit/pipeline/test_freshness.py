"""Data freshness on the exchange's clock: a weekend or holiday is never stale, a missing
session is, at its close + the SLA."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.freshness import DomainSla, Mode, State, assess, market_seconds, slas_for
from shared.calendar import get_calendar
from shared.settings import FreshnessSettings

XNYS = get_calendar("XNYS")
DAILY = DomainSla("bars", 3600, Mode.SESSIONS, daily=True)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def verdict(newest: datetime | None, now: datetime, sla: DomainSla = DAILY):
    [one] = assess({sla.domain: newest}, [sla], XNYS, now)
    return one


def test_fridays_daily_bar_is_fresh_all_weekend() -> None:
    friday = utc(2024, 6, 7)  # a daily bar: the session date at 00:00 UTC
    assert verdict(friday, utc(2024, 6, 8, 12)).state is State.FRESH
    assert verdict(friday, utc(2024, 6, 9, 23, 59)).state is State.FRESH


def test_mondays_bar_is_owed_at_mondays_close_plus_the_sla() -> None:
    friday = utc(2024, 6, 7)
    # Monday closes 20:00 UTC (16:00 New York, summer time); SLA one hour.
    assert verdict(friday, utc(2024, 6, 10, 20, 59)).state is State.FRESH
    late = verdict(friday, utc(2024, 6, 10, 21, 1))
    assert late.state is State.STALE and late.overdue_s == pytest.approx(60)
    assert "owed since 2024-06-10 21:00Z" in late.detail


def test_a_missing_friday_stays_stale_over_the_weekend() -> None:
    thursday = utc(2024, 6, 6)
    assert verdict(thursday, utc(2024, 6, 7, 20, 30)).state is State.FRESH
    assert verdict(thursday, utc(2024, 6, 8, 12)).state is State.STALE


def test_a_holiday_owes_nothing() -> None:
    wednesday = utc(2024, 7, 3)  # then Independence Day (Thursday) is closed
    assert verdict(wednesday, utc(2024, 7, 5, 12)).state is State.FRESH
    assert verdict(wednesday, utc(2024, 7, 5, 21, 30)).state is State.STALE


def test_intraday_counts_only_market_time() -> None:
    sla = DomainSla("bars", 900, Mode.MARKET_TIME)
    friday_1555_ny = utc(2024, 6, 7, 19, 55)
    # 5 minutes on Friday + 10 on Monday after the 13:30 UTC open = exactly the SLA.
    assert market_seconds(XNYS, friday_1555_ny, utc(2024, 6, 10, 13, 40)) == 900
    assert verdict(friday_1555_ny, utc(2024, 6, 10, 13, 40), sla).state is State.FRESH
    stale = verdict(friday_1555_ny, utc(2024, 6, 10, 13, 41), sla)
    assert stale.state is State.STALE and stale.overdue_s == pytest.approx(60)
    assert stale.age_s == pytest.approx(
        (utc(2024, 6, 10, 13, 41) - friday_1555_ny).seconds + 2 * 86400
    )


def test_wall_clock_domains_and_empty_ones() -> None:
    sla = DomainSla("observations", 120 * 86400, Mode.WALL)
    assert verdict(utc(2024, 1, 1), utc(2024, 4, 1), sla).state is State.FRESH
    assert verdict(utc(2024, 1, 1), utc(2024, 6, 1), sla).state is State.STALE
    empty = verdict(None, utc(2024, 6, 1), sla)
    assert empty.state is State.EMPTY and not empty.stale and empty.age_s is None


def test_forecasts_may_skip_forecast_every_sessions() -> None:
    [*_, forecasts, _articles, _obs] = slas_for(FreshnessSettings(), "1d", 5)
    assert forecasts.allowed_sessions == 5
    monday = utc(2024, 6, 3)
    # Four more sessions (Tue..Fri) close without an origin: still fresh; the fifth (Monday
    # 06-10) owes one at its close + the SLA.
    assert verdict(monday, utc(2024, 6, 8), forecasts).state is State.FRESH
    assert verdict(monday, utc(2024, 6, 10, 22), forecasts).state is State.STALE


def test_intraday_slas_are_in_market_time() -> None:
    bars, indicators, forecasts, articles, observations = slas_for(FreshnessSettings(), "5m", 5)
    assert {bars.mode, indicators.mode, forecasts.mode} == {Mode.MARKET_TIME}
    assert forecasts.sla_s == 3600 + 5 * 300
    assert articles.mode is Mode.SESSIONS and observations.mode is Mode.WALL


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        assess({}, [DAILY], XNYS, datetime(2024, 6, 7))  # noqa: DTZ001 (the point)
