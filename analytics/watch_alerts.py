"""`python -m analytics.watch_alerts`: follow alert_events, one line (or JSON line) per event.

Reads `WHERE id > last ORDER BY id`, woken by LISTEN alerts (a poll as the safety net). Safe
without gaps because every insert takes one advisory lock until its COMMIT, so ids become
visible in id order (analytics/alerts/store.py). The last id printed lives in this process:
after a lost connection (a PostgreSQL restart) it reconnects and goes on from there, with no
gap and no repeat.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

import psycopg

from analytics.alerts import store
from analytics.alerts.sinks import Backoff, event_document
from shared.db import first_line
from shared.errors import SettingsError
from shared.settings import PostgresSettings, build, check_setting_names

PROG = "analytics.watch_alerts"
BATCH = 1000


def line_of(event: store.AlertEvent) -> str:
    """One human line: id, bar time, state, severity, series, rule, value vs threshold, text."""
    numbers = " ".join(
        f"{name}={number:g}"
        for name, number in (("value", event.value), ("threshold", event.threshold))
        if number is not None
    )
    parts = [
        f"#{event.id}",
        event.bar_ts.isoformat(),
        event.state.upper(),
        event.severity,
        f"{event.symbol}/{event.interval}",
        event.rule,
        numbers,
        f"— {event.message}",
        "(historical)" if event.historical else "",
    ]
    return " ".join(part for part in parts if part)


def follow(
    conninfo: str,
    after_id: int | None,
    out: TextIO,
    stop: threading.Event,
    *,
    as_json: bool = False,
    poll_s: float = 5.0,
) -> int:
    """Print every event with id > after_id (None: from now) until `stop`; the last id printed."""
    last = after_id
    backoff = Backoff(0.5, 5.0)
    failures = 0
    while not stop.is_set():
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                # LISTEN before the first read: a NOTIFY between the read and the wait is kept.
                conn.execute(f"LISTEN {store.CHANNEL}")
                if last is None:
                    last = store.last_id(conn)
                if failures:
                    print(f"{PROG}: reconnected; going on after #{last}", file=sys.stderr)
                    failures = 0
                while not stop.is_set():
                    events = store.events_after(conn, last, BATCH)
                    for event in events:
                        if as_json:
                            text = json.dumps(event_document(event), separators=(",", ":"))
                        else:
                            text = line_of(event)
                        out.write(text + "\n")
                        last = event.id
                    out.flush()
                    if len(events) < BATCH:
                        _wait(conn, stop, poll_s)
        except psycopg.OperationalError as exc:
            failures += 1
            print(f"{PROG}: PostgreSQL: {first_line(exc)}; retrying", file=sys.stderr)
            stop.wait(backoff.delay(failures))
    return last or 0


def _wait(conn: psycopg.Connection, stop: threading.Event, poll_s: float) -> None:
    deadline = time.monotonic() + poll_s
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        if list(conn.notifies(timeout=min(left, 0.5), stop_after=1)):
            return


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__)
    parser.add_argument(
        "--from-id",
        type=int,
        metavar="N",
        help="start at event id N (inclusive; 1: every event); default: events from now on",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document per line")
    parser.add_argument(
        "--poll-s", type=float, default=5.0, help="safety-net poll besides LISTEN (default 5)"
    )
    args = parser.parse_args(argv)
    try:
        check_setting_names()
        postgres = build(PostgresSettings)
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    after = None if args.from_id is None else max(args.from_id - 1, 0)
    try:
        follow(postgres.conninfo(), after, sys.stdout, stop, as_json=args.json, poll_s=args.poll_s)
    except BrokenPipeError:  # `| head`: the reader has gone
        return 0
    except psycopg.Error as exc:  # not a lost connection: a missing table, a refused login
        print(f"{PROG}: PostgreSQL: {first_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
