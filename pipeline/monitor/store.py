"""The monitor's SQL: what it reads besides freshness and offsets, and pipeline_metrics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

import psycopg

from pipeline.figures import Figure

ALERT_COUNTS = "SELECT rule, state, count(*) FROM alert_events GROUP BY rule, state"
COPY_FIGURES = "COPY pipeline_metrics (recorded_at, name, labels, value) FROM STDIN"
DELETE_EXPIRED = "DELETE FROM pipeline_metrics WHERE recorded_at < %s"


def alert_counts(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    return {(rule, state): count for rule, state, count in conn.execute(ALERT_COUNTS)}


def write_figures(
    conn: psycopg.Connection, at: datetime, figures: Sequence[Figure], keep: timedelta
) -> int:
    """One round's figures (COPY) and the expiry of rows older than `keep`, in one transaction."""
    with conn.transaction():
        with conn.cursor() as cur, cur.copy(COPY_FIGURES) as copy:
            for figure in figures:
                copy.write_row((at, figure.name, json.dumps(figure.labels), figure.value))
        conn.execute(DELETE_EXPIRED, (at - keep,))
    return len(figures)
