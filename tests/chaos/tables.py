"""What a run of the pipeline leaves in PostgreSQL, without the columns that differ per run
(ids, `created_at`, `ingested_at`, `published_at`, `fitted_at`, …), and how two runs compare."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from shared.settings import PostgresSettings

Row = tuple[Any, ...]

# Per table: the query of its run-independent columns, the length of the natural key those
# columns start with (to name the rows that differ).
QUERIES: dict[str, tuple[str, int]] = {
    "price_bars": (
        "SELECT symbol, interval, ts, open, high, low, close, adj_close, volume, split_basis,"
        " source, event_id FROM price_bars",
        3,
    ),
    # params_id is a serial: the parameters themselves are what must be equal.
    "indicators": (
        "SELECT i.symbol, i.interval, i.ts, i.sma_fast, i.sma_slow, i.ema_fast, i.ema_slow,"
        " i.rsi, i.macd, i.macd_signal, i.macd_hist, i.bb_lower, i.bb_middle, i.bb_upper,"
        " i.volatility, p.params::text FROM indicators i JOIN indicator_params p USING (params_id)",
        3,
    ),
    "forecast_origins": (
        "SELECT symbol, interval, origin_ts, outcome, message, arima_order, searched, warnings,"
        " window_bars, scale FROM forecast_origins",
        3,
    ),
    "forecasts": (
        "SELECT symbol, interval, origin_ts, step, model, target_ts, median, mean, lo80, hi80,"
        " lo95, hi95, arima_order, aicc FROM forecasts",
        5,
    ),
    "forecast_errors": (
        "SELECT symbol, interval, origin_ts, step, model, bar_ts, actual, abs_error,"
        " scaled_error, inside80, inside95 FROM forecast_errors",
        5,
    ),
}
# Tables an undisturbed run leaves empty: a bar delivered twice or out of order would land here.
EMPTY = ("bar_revisions", "late_bars", "dead_letters")
# An alert event without its id, its predecessor's id and its delivery markers (the relay's
# bookkeeping: when each sink took it, or why it was skipped — a historical event inserted while
# a sink worker marks the pending ones may be marked 'not configured' rather than 'historical').
ALERT_COLUMNS = (
    "id, prev_event_id, fingerprint, rule, rules_version, severity, symbol, interval, state,"
    " value, threshold, message, bar_ts, historical"
)


@dataclass(frozen=True)
class Tables:
    """One run's rows by table; alert events as each machine's chain, in id order."""

    rows: dict[str, set[Row]]
    # fingerprint → its events in id order (ids and predecessors left out once checked)
    alert_chains: dict[str, list[Row]]
    # (symbol, interval, origin_ts) of the origins whose fit ran out of time in this run
    timeouts: frozenset[tuple[str, str, datetime]]

    def counts(self) -> dict[str, int]:
        counts = {name: len(rows) for name, rows in self.rows.items()}
        counts["alert_events"] = sum(len(chain) for chain in self.alert_chains.values())
        return counts


def read_tables(pg: PostgresSettings) -> Tables:
    """The run-independent content of a run's database (its alert chains checked first)."""
    with psycopg.connect(pg.conninfo()) as conn:
        rows = {name: set(conn.execute(query)) for name, (query, _) in QUERIES.items()}  # type: ignore[arg-type]
        for name in EMPTY:
            found = conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608 - constant names
            assert found == 0, f"{pg.dbname}: {found} row(s) in {name}"
        events = conn.execute(f"SELECT {ALERT_COLUMNS} FROM alert_events ORDER BY id").fetchall()  # noqa: S608 - constant columns
    return Tables(rows, alert_chains(events), timeouts(rows["forecast_origins"]))


def alert_chains(events: list[Row]) -> dict[str, list[Row]]:
    """Each machine's events in id order, after checking that they form one chain: the first
    has no predecessor, every later one points at the one before it, bar times increase."""
    chains: dict[str, list[Row]] = {}
    last: dict[str, tuple[int, datetime]] = {}
    for event_id, prev, fingerprint, *rest in events:
        bar_ts = rest[9]
        before = last.get(fingerprint)
        assert prev == (None if before is None else before[0]), (
            f"alert {event_id} of {fingerprint}: predecessor {prev}, expected {before}"
        )
        assert before is None or bar_ts > before[1], f"alert {event_id}: bar_ts not increasing"
        last[fingerprint] = (event_id, bar_ts)
        chains.setdefault(fingerprint, []).append(tuple(rest))
    return chains


def timeouts(origins: set[Row]) -> frozenset[tuple[str, str, datetime]]:
    return frozenset(row[:3] for row in origins if row[3] == "timeout")


def without_timeouts(tables: Tables, timed_out: frozenset[tuple[str, str, datetime]]) -> Tables:
    """The tables with what an origin's outcome `timeout` decides left out: the origins that
    timed out in either run, their forecasts and errors, and the forecast-breach alerts of their
    series (a timed-out origin checks nothing, so the machine's later events may move too)."""
    if not timed_out:
        return tables
    series = {(symbol, interval) for symbol, interval, _ in timed_out}
    rows = {
        name: (
            {row for row in table if row[:3] not in timed_out}
            if name.startswith("forecast")
            else table
        )
        for name, table in tables.rows.items()
    }
    chains = {
        fingerprint: chain
        for fingerprint, chain in tables.alert_chains.items()
        if not (chain[0][0].startswith("forecast_breach") and chain[0][3:5] in series)
    }
    return Tables(rows, chains, frozenset())


def assert_same_tables(actual: Tables, expected: Tables) -> None:
    """Equal rows in every table and equal alert chains (ignoring timed-out origins), or a
    message naming the first rows that differ in each table that does."""
    timed_out = actual.timeouts | expected.timeouts
    actual, expected = without_timeouts(actual, timed_out), without_timeouts(expected, timed_out)
    problems = [
        difference(name, actual.rows[name], expected.rows[name], key_length)
        for name, (_, key_length) in QUERIES.items()
    ]
    problems.append(
        difference(
            "alert_events",
            {(fp, tuple(chain)) for fp, chain in actual.alert_chains.items()},
            {(fp, tuple(chain)) for fp, chain in expected.alert_chains.items()},
            1,
        )
    )
    found = [problem for problem in problems if problem]
    assert not found, "\n".join(found)


def difference(name: str, actual: set[Row], expected: set[Row], key_length: int) -> str:
    """'' when equal; otherwise how many rows differ and the first few, side by side."""
    if actual == expected:
        return ""
    mine = {row[:key_length]: row for row in actual}
    theirs = {row[:key_length]: row for row in expected}
    keys = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
    shown = "\n".join(f"  {mine.get(k)}\n  expected {theirs.get(k)}" for k in keys[:3])
    return (
        f"{name}: {len(keys)} of {len(theirs)} row(s) differ"
        f" ({len(mine.keys() - theirs.keys())} extra, {len(theirs.keys() - mine.keys())} missing),"
        f" e.g.\n{shown}"
    )
