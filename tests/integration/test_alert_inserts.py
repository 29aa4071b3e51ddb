"""insert_alert_events on real Postgres: one statement that does what inserting the rows one by
one would (ids in the rows' order, each chained to its fingerprint's newest, replays skipped),
checked against a model of that row-by-row insert."""

from __future__ import annotations

import random
from datetime import datetime

import psycopg

from analytics.alerts.store import CHANNEL, AlertRow, insert_alert_events
from shared.settings import PostgresSettings
from tests.integration.alert_machines import alert_row as row

Key = tuple[str, datetime, str]


def key(alert: AlertRow) -> Key:
    return (alert.fingerprint, alert.bar_ts, alert.state)


def insert(pg: PostgresSettings, rows: list[AlertRow]) -> list[int]:
    with psycopg.connect(pg.conninfo()) as conn, conn.transaction():
        return insert_alert_events(conn, rows)


def stored(pg: PostgresSettings) -> list[tuple[int, Key, Key | None]]:
    """(id, key, the key of its prev_event_id) of every row, in id order."""
    with psycopg.connect(pg.conninfo()) as conn:
        rows = conn.execute(
            "SELECT e.id, e.fingerprint, e.bar_ts, e.state, p.fingerprint, p.bar_ts, p.state"
            " FROM alert_events e LEFT JOIN alert_events p ON p.id = e.prev_event_id"
            " ORDER BY e.id"
        ).fetchall()
    return [(r[0], (r[1], r[2], r[3]), None if r[4] is None else (r[4], r[5], r[6])) for r in rows]


class RowByRow:
    """The meaning of an insert: each row in turn is skipped if its key is stored, else stored
    after every earlier row, chained to the newest stored row of its fingerprint."""

    def __init__(self) -> None:
        self.rows: list[tuple[Key, Key | None]] = []

    def insert(self, batch: list[AlertRow]) -> int:
        inserted = 0
        for alert in batch:
            if any(k == key(alert) for k, _ in self.rows):
                continue
            newest = [k for k, _ in self.rows if k[0] == alert.fingerprint]
            self.rows.append((key(alert), newest[-1] if newest else None))
            inserted += 1
        return inserted


def test_one_batch_gets_ids_in_row_order_and_chains_within_itself(
    pg_settings: PostgresSettings,
) -> None:
    # Row order is not the fingerprints' order: ids must follow the rows.
    names = sorted(["zeta", "alpha", "mid"], key=lambda m: row(m, 0).fingerprint, reverse=True)
    first = insert(pg_settings, [row(names[0], 0), row(names[1], 0)])
    batch = [
        row(names[2], 1),
        row(names[0], 1, "resolved"),
        row(names[1], 1, "resolved"),
        row(names[0], 2),
        row(names[2], 2, "resolved"),
        row(names[0], 3, "resolved"),
    ]
    ids = insert(pg_settings, batch)
    assert len(ids) == len(batch) and ids == sorted(ids) and min(ids) > max(first)
    table = stored(pg_settings)
    assert [k for _, k, _ in table] == [key(r) for r in [row(names[0], 0), row(names[1], 0)]] + [
        key(r) for r in batch
    ]
    by_key = {k: prev for _, k, prev in table}
    assert by_key[key(batch[0])] is None
    assert by_key[key(batch[1])] == key(row(names[0], 0))  # the table's newest of its machine
    assert by_key[key(batch[2])] == key(row(names[1], 0))
    assert by_key[key(batch[3])] == key(batch[1])  # the row before it in the same batch
    assert by_key[key(batch[4])] == key(batch[0])
    assert by_key[key(batch[5])] == key(batch[3])


def test_a_replaying_batch_skips_what_is_stored_and_chains_the_rest_after_it(
    pg_settings: PostgresSettings,
) -> None:
    insert(pg_settings, [row("a", 0), row("a", 1, "resolved")])
    again = [row("a", 0), row("a", 1, "resolved"), row("a", 2), row("b", 2), row("b", 2)]
    ids = insert(pg_settings, again)
    assert len(ids) == 2
    prevs = {k: prev for _, k, prev in stored(pg_settings)}
    assert prevs[key(row("a", 2))] == key(row("a", 1, "resolved"))
    assert prevs[key(row("b", 2))] is None
    assert insert(pg_settings, again) == []


def test_notify_carries_the_largest_id_and_only_when_rows_were_inserted(
    pg_settings: PostgresSettings,
) -> None:
    with psycopg.connect(pg_settings.conninfo(), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        ids = insert(pg_settings, [row("a", 0), row("b", 0), row("a", 1, "resolved")])
        insert(pg_settings, [row("b", 0)])  # nothing new: no notification
        payloads = [n.payload for n in listener.notifies(timeout=1.0)]
    assert payloads == [str(max(ids))]


def test_random_batches_store_what_a_row_by_row_insert_would(
    pg_settings: PostgresSettings,
) -> None:
    rng = random.Random(12)  # noqa: S311 (reproducible test data)
    model = RowByRow()
    history: list[AlertRow] = []
    clocks = {m: 0 for m in ("a", "b", "c", "d")}
    for _ in range(30):
        batch: list[AlertRow] = []
        for _ in range(rng.randint(1, 12)):
            choice = rng.random()
            if history and choice < 0.3:
                batch.append(rng.choice(history))  # a replayed row
            elif batch and choice < 0.35:
                batch.append(batch[-1])  # the same row twice in one batch
            else:
                machine = rng.choice(sorted(clocks))
                clocks[machine] += 1
                state = "firing" if clocks[machine] % 2 else "resolved"
                batch.append(row(machine, clocks[machine], state))
        history.extend(batch)
        ids = insert(pg_settings, batch)
        assert len(ids) == model.insert(batch)
    assert [(k, prev) for _, k, prev in stored(pg_settings)] == model.rows
