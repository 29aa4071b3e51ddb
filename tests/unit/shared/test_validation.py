"""Bar validation: each rule rejects with a reason; real bars pass."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from shared.errors import ValidationError
from shared.validation import validate_bar
from tests.unit.shared.test_schemas import make_bar


def test_a_good_bar_passes() -> None:
    validate_bar(make_bar())


def test_daily_bar_keyed_by_session_date_passes() -> None:
    validate_bar(make_bar(interval="1d", ts=datetime(2020, 1, 2, tzinfo=UTC)))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"high": 225.0}, "high"),
        ({"low": 225.8}, "low"),
        ({"open": math.nan}, "open"),
        ({"close": -1.0}, "close"),
        ({"adj_close": math.inf}, "adj_close"),
        ({"volume": -5}, "volume"),
        ({"split_basis": 0.0}, "split_basis"),
        ({"interval": "7m"}, "interval"),
        ({"symbol": ""}, "symbol"),
        ({"interval": "1d"}, "session date"),
        ({"ts": datetime(2030, 1, 1, tzinfo=UTC)}, "later than its fetch time"),
    ],
)
def test_each_rule_rejects_with_its_reason(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        validate_bar(make_bar(**changes))
