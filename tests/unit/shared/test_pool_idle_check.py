"""The pool's check hook: a round trip only for a connection that sat idle (shared/db.py)."""

from __future__ import annotations

from shared.db import CheckWhenIdle


class Conn:
    """Stands for a pooled connection: only its identity matters to the hook."""


def test_a_connection_is_checked_when_new_or_idle_and_not_when_just_returned() -> None:
    now = [100.0]
    checked: list[Conn] = []
    hook = CheckWhenIdle(idle_s=2.0, check=checked.append, clock=lambda: now[0])
    conn, other = Conn(), Conn()

    hook.check(conn)  # never returned: a fresh connection is checked
    assert checked == [conn]

    hook.returned(conn)
    now[0] += 1.5
    hook.check(conn)  # taken again 1.5 s after its return: no round trip
    assert checked == [conn]

    hook.returned(conn)
    now[0] += 2.5
    hook.check(conn)  # idle 2.5 s: checked again
    hook.check(other)  # the other connection's return time is its own
    assert checked == [conn, conn, other]
