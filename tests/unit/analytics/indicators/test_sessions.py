"""The exchange's session figures: the child process gives the numbers computed in place."""

from __future__ import annotations

import subprocess
import sys

import pytest

from analytics.indicators.sessions import CHILD, REPO_ROOT, count_sessions


def child(exchange: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, exchange],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )


def test_the_child_prints_the_numbers_counted_in_place() -> None:
    done = child("XNYS")
    assert done.returncode == 0, done.stderr
    per_year, minutes = count_sessions("XNYS")
    assert done.stdout.strip() == f"[{per_year!r}, {minutes!r}]"
    assert 250 < per_year < 254 and minutes == 390.0


def test_an_unknown_exchange_is_one_line_from_the_child() -> None:
    done = child("NOPE")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "NOPE" in line


def test_the_consumer_process_does_not_load_the_calendar_for_the_factor() -> None:
    """The point of the child: the factor without pandas and the calendars in this process."""
    code = (
        "import sys; from analytics.indicators import annualization_factor; "
        "f = annualization_factor('1m', 'XNYS'); "
        "print(f, 'pandas' in sys.modules, 'exchange_calendars' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    factor, pandas_loaded, calendars_loaded = done.stdout.split()
    per_year, minutes = count_sessions("XNYS")
    assert float(factor) == pytest.approx((per_year * minutes) ** 0.5, rel=1e-15)
    assert (pandas_loaded, calendars_loaded) == ("False", "False")
