"""A Grafana SQL panel's query as Grafana's PostgreSQL datasource sends it: macros and template
variables expanded, so tests run exactly that text against the real database."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta

# Grafana caps a panel at about this many points when it computes $__interval.
MAX_DATA_POINTS = 1000
# Grafana's rounding steps for $__interval (a subset: enough to stay a valid interval).
INTERVAL_STEPS = (
    ("1s", 1),
    ("1m", 60),
    ("5m", 300),
    ("1h", 3600),
    ("1d", 86400),
    ("1w", 7 * 86400),
)


def grafana_interval(start: datetime, end: datetime) -> str:
    """$__interval for a range: range / max points, rounded up to a Grafana step."""
    wanted = (end - start) / timedelta(seconds=1) / MAX_DATA_POINTS
    return next((name for name, seconds in INTERVAL_STEPS if seconds >= wanted), "1w")


def expand(raw_sql: str, start: datetime, end: datetime, variables: Mapping[str, str]) -> str:
    """The query with $__timeFilter(col), $__timeFrom(), $__timeTo(), $__interval and the
    template variables ($name, ${name}, [[name]]) expanded; anything else starting with `$` is
    an error (a macro this expansion does not know would reach PostgreSQL as text)."""
    since, until = (f"'{moment.isoformat()}'" for moment in (start, end))
    text = re.sub(r"\$__timeFilter\(\s*([^)]+?)\s*\)", rf"\1 BETWEEN {since} AND {until}", raw_sql)
    text = re.sub(r"\$__timeFrom\(\s*\)", since, text)
    text = re.sub(r"\$__timeTo\(\s*\)", until, text)
    text = text.replace("$__interval", grafana_interval(start, end))
    for name, value in variables.items():
        escaped = value.replace("'", "''")  # Grafana quotes single values in SQL like this
        text = re.sub(rf"\$\{{{name}\}}|\[\[{name}\]\]|\${name}\b", escaped, text)
    left = re.findall(r"\$\w+|\$\{\w+\}|\[\[\w+\]\]", text)
    if left:
        raise ValueError(f"not expanded: {', '.join(sorted(set(left)))}")
    return text
