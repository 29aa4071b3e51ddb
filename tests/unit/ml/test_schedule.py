"""Origins are anchored on the index the caller provides, not on the series' own bar count."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ml.params import ForecastParams
from ml.schedule import is_origin, origins, session_anchors

PARAMS = ForecastParams(every=5, min_bars=3, window=10)


def _origin_anchors(anchors: list[int]) -> list[int]:
    return [anchors[i] for i in origins(anchors, PARAMS)]


def test_origins_are_multiples_of_n_once_m_bars_exist() -> None:
    anchors = list(range(12, 40))
    assert _origin_anchors(anchors) == [15, 20, 25, 30, 35]
    # 15 is the 4th bar (≥ 3); a series starting at 14 has 2 bars there, so 15 is no origin.
    assert _origin_anchors(list(range(14, 40))) == [20, 25, 30, 35]


def test_a_backfill_of_older_bars_moves_no_origin() -> None:
    before = _origin_anchors(list(range(12, 40)))
    after = _origin_anchors(list(range(2, 40)))  # 10 older bars arrive
    assert after == [5, 10, *before]
    assert set(before) <= set(after)


def test_a_missing_bar_skips_its_origin_and_moves_no_other() -> None:
    full = list(range(0, 40))
    halted = [a for a in full if a != 25]
    assert _origin_anchors(halted) == [a for a in _origin_anchors(full) if a != 25]


def test_is_origin_depends_on_the_anchor_not_the_position() -> None:
    assert is_origin(1_000, 500, ForecastParams())
    assert not is_origin(1_001, 500, ForecastParams())
    assert not is_origin(1_000, 119, ForecastParams())


def test_anchors_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        origins([3, 3, 4], PARAMS)


def test_session_anchors_count_exchange_sessions_not_days() -> None:
    # 2024-07-04 is a NYSE holiday and 2024-07-06/07 a weekend: consecutive sessions, +1 each.
    days = [date(2024, 7, 3), date(2024, 7, 5), date(2024, 7, 8)]
    first, second, third = session_anchors(days)
    assert (second - first, third - second) == (1, 1)
    with pytest.raises(ValueError, match="not XNYS sessions: 2024-07-04"):
        session_anchors([date(2024, 7, 4)])


def test_daily_origins_fall_on_the_same_sessions_whatever_the_first_bar() -> None:
    params = ForecastParams(min_bars=20, window=100)
    days = [date(2023, 1, 3) + timedelta(days=i) for i in range(200)]
    sessions = [d for d in days if d.weekday() < 5 and d not in _HOLIDAYS_2023]
    anchors = session_anchors(sessions)
    late_start = session_anchors(sessions[30:])
    whole = {sessions[i] for i in origins(anchors, params)}
    later = {sessions[30:][i] for i in origins(late_start, params)}
    assert later <= whole and len(later) >= len(whole) - 6


_HOLIDAYS_2023 = {
    date(2023, 1, 16),
    date(2023, 2, 20),
    date(2023, 4, 7),
    date(2023, 5, 29),
    date(2023, 6, 19),
    date(2023, 7, 4),
}
