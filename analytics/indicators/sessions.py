"""An exchange's sessions per year and regular session length: the calendar behind the
volatility annualisation factor.

The two numbers come from exchange_calendars, which brings pandas and the calendar's tables
(about 90 MB resident) into the analytics consumer, a process that otherwise needs neither. So
a process that has not loaded them already computes the numbers in a short-lived child
(`main`, which prints them as JSON) and keeps only the two
floats; one that has (a producer, a test) computes them in place. Same code, same numbers.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=8)
def exchange_sessions(exchange: str) -> tuple[float, float]:
    """(mean sessions per full calendar year, median regular session length in minutes)."""
    if "exchange_calendars" in sys.modules:
        return count_sessions(exchange)
    # The same interpreter (its site-packages come with it); this package from the repo.
    paths = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-c", CHILD, exchange],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        raise ValueError(f"the sessions of exchange {exchange!r}: {lines[-1]}")
    per_year, minutes = json.loads(done.stdout)
    return float(per_year), float(minutes)


def count_sessions(exchange: str) -> tuple[float, float]:
    """The two numbers, counted over the full calendar years the exchange calendar covers."""
    from shared.calendar import get_calendar

    calendar = get_calendar(exchange)
    per_year: list[int] = []
    lengths: list[float] = []
    for year in range(calendar.first_day.year, calendar.last_day.year + 1):
        first, last = date(year, 1, 1), date(year, 12, 31)
        if first < calendar.first_day or last > calendar.last_day:
            continue
        sessions = 0
        day = first
        while day <= last:
            session = calendar.session(day)
            if session is not None:
                sessions += 1
                lengths.append((session.close - session.open).total_seconds() / 60)
            day += timedelta(days=1)
        per_year.append(sessions)
    if not per_year:
        raise ValueError(f"the {exchange} calendar covers no full year")
    return statistics.fmean(per_year), statistics.median(lengths)


CHILD = "from analytics.indicators.sessions import main; main()"


def main() -> None:
    """The child: the numbers of exchange argv[1] as JSON, or one line on stderr."""
    try:
        print(json.dumps(count_sessions(sys.argv[1])))
    except Exception as exc:  # noqa: BLE001 (one line for the parent's error)
        sys.exit(f"{type(exc).__name__}: {exc}")
