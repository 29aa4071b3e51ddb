"""start_pipeline.py's status line: in place on a terminal, on change or once a minute in a file."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

from pipeline_supervisor import output
from pipeline_supervisor.display import StatusDisplay
from pipeline_supervisor.state_file import read_state, write_state
from pipeline_supervisor.status import ServiceView
from pipeline_supervisor.supervisor import Child, check, children_states


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def views(state: str = "up", rate: float = 0.0) -> list[ServiceView]:
    return [ServiceView("consumer.storage", state, rate, 0)]


def test_a_file_gets_changes_and_one_line_a_minute() -> None:
    out, clock = io.StringIO(), Clock()
    display = StatusDisplay(out, tty=False, clock=clock)
    assert display.show("first", views())
    clock.now = 5
    assert not display.show("same, rate moved", views(rate=3.0))  # rates are not a change
    clock.now = 10
    assert display.show("restarting", views("restarting(1)"))
    clock.now = 69
    assert not display.show("quiet", views("restarting(1)"))
    clock.now = 70
    assert display.show("a minute later", views("restarting(1)"))
    assert out.getvalue().splitlines() == ["first", "restarting", "a minute later"]


def test_a_terminal_redraws_in_place_with_other_lines_above() -> None:
    out = io.StringIO()
    display = StatusDisplay(out, tty=True)
    try:
        display.show("status 1", views())
        display.show("status 2", views())
        output.emit("a log line", out)
    finally:
        display.close()
    text = out.getvalue()
    assert "\n" not in text.split("a log line")[0]  # the status lines were redrawn, not added
    assert text == ("\r\x1b[Kstatus 1\r\x1b[Kstatus 2\r\x1b[Ka log line\nstatus 2\n")


def test_restarts_reach_the_state_file(tmp_path: Path) -> None:
    child = Child("x", [sys.executable, "-c", "raise SystemExit(1)"])
    child.start(time.monotonic())
    assert child.process is not None
    child.process.wait(30)
    check(child, time.monotonic())  # exited: a restart is scheduled and counted
    path = tmp_path / "supervisor-18080.json"
    write_state(path, children_states([child]))
    at, services = read_state(path)  # type: ignore[misc]
    assert services == {"x": {"state": "restarting(1)", "restarts": 1, "pid": None}}
    assert abs(at - time.time()) < 60
    assert read_state(tmp_path / "missing.json") is None
