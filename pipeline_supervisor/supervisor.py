"""The supervisor: runs the setup steps, starts each service as an OS process, restarts a
crashed one with backoff, shows the status line, and stops them all (start_pipeline.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pipeline_supervisor.display import StatusDisplay
from pipeline_supervisor.output import emit, forward, labelled
from pipeline_supervisor.state_file import write_state
from pipeline_supervisor.status import (
    ServiceView,
    Totals,
    format_status,
    message_rate,
    scrape,
)
from shared.health import health_port
from shared.services import Service
from shared.settings import HealthSettings

# One-shot steps before any service starts: the schema first, then the roles the services log in
# as (idempotent), then the topics.
SETUP_STEPS: tuple[tuple[str, ...], ...] = (
    ("db", "migrate"),
    ("db", "bootstrap"),
    ("shared.topic_setup",),
)

SETTINGS_EXIT = 2  # shared.service.run_service: a wrong setting, already explained in one line
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
STEADY_RUN_S = 60.0  # a run this long was not a crash loop: the next restart waits BACKOFF_FIRST_S
STOP_GRACE_S = 20.0
TICK_S = 0.2


def backoff_delay(failures: int) -> float:
    """Seconds before restart number `failures` (1, 2, 4, … capped at BACKOFF_MAX_S)."""
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(max(failures, 1) - 1, 30))


def next_restart(failures: int, ran_s: float) -> tuple[int, float]:
    """The failure count and delay after a child that ran `ran_s` seconds exited."""
    failures = 1 if ran_s >= STEADY_RUN_S else failures + 1
    return failures, backoff_delay(failures)


@dataclass
class Child:
    """One supervised service process and its restart bookkeeping."""

    name: str
    argv: list[str]
    port: int | None = None  # its health port; None or 0: not scraped
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restarts: int = 0  # since start_pipeline started (the status screen shows it)
    restart_at: float | None = None
    last: Totals | None = None
    output: list[threading.Thread] = field(default_factory=list)

    def start(self, now: float) -> None:
        # The environment passes through: the service reads its settings from env/.env itself.
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        # Its lines pass through labelled with its name (a traceback has none of its own).
        assert self.process.stdout and self.process.stderr  # noqa: S101 (narrowing: PIPE)
        self.output = [
            forward(self.name, self.process.stdout, to_stderr=False),
            forward(self.name, self.process.stderr, to_stderr=True),
        ]
        self.started_at, self.restart_at = now, None

    @property
    def state(self) -> str:
        if self.process is not None:
            return "up"
        return "stopped" if self.restart_at is None else f"restarting({self.failures})"


def say(message: str, out: TextIO | None = None) -> None:
    """One line of our own, to stderr unless `out` is given (status news goes to stdout)."""
    emit(f"start_pipeline: {message}", out or sys.stderr)  # above a redrawn status line


def check(child: Child, now: float) -> int | None:
    """Notice an exit and schedule its restart, or start a due restart; SETTINGS_EXIT stops all."""
    if child.process is None:
        if child.restart_at is not None and now >= child.restart_at:
            child.start(now)
        return None
    code = child.process.poll()
    if code is None:
        return None
    child.process = None
    for thread in child.output:
        thread.join(1.0)  # its last lines (the one naming a wrong setting) before ours
    if code == SETTINGS_EXIT:
        say(f"{child.name} exited with code {code} (a wrong setting): stopping everything")
        return SETTINGS_EXIT
    # Any other exit, 0 included, is restarted: a service stops only when this supervisor says so.
    child.failures, delay = next_restart(child.failures, now - child.started_at)
    child.restarts += 1
    child.restart_at = now + delay
    say(
        f"{child.name} exited with code {code} after {now - child.started_at:.1f}s; "
        f"restart {child.failures} in {delay:g}s"
    )
    return None


def observe(child: Child, host: str) -> ServiceView:
    if child.process is None or not child.port:
        return ServiceView(child.name, child.state, None, None)
    totals, reasons, notes = scrape(f"http://{host}:{child.port}")
    rate = message_rate(child.last, totals)
    child.last = totals or child.last
    return ServiceView(child.name, child.state, rate, totals and totals.rows, reasons, notes)


def supervise(
    children: Sequence[Child],
    stop: threading.Event,
    status_every: float,
    host: str = "127.0.0.1",
    out: TextIO | None = None,
    state_path: Path | None = None,
) -> int:
    """Start every child and keep it running until `stop` is set; returns the exit code.

    Every `status_every` seconds the status line goes to `out` (in place on a terminal, on
    change or once a minute in a file) and, with `state_path`, each child's state and restarts
    to that file for `python start_pipeline.py status`.
    """
    for child in children:
        child.start(time.monotonic())
    pids = ", ".join(
        f"{child.name} (pid {child.process.pid})" for child in children if child.process
    )
    out = out or sys.stdout
    say(f"started {pids}; a status line every {status_every:g}s", out)
    display = StatusDisplay(out)
    next_status = time.monotonic() + status_every
    try:
        while not stop.wait(TICK_S):
            now = time.monotonic()
            for child in children:
                # A Ctrl-C reaches the children too: their exits then are no crash.
                if not stop.is_set() and check(child, now) == SETTINGS_EXIT:
                    return SETTINGS_EXIT
            if now >= next_status:
                next_status = now + status_every
                views = [observe(child, host) for child in children]
                display.show(f"start_pipeline: {format_status(views)}", views)
                if state_path is not None:
                    write_state(state_path, children_states(children))
    finally:
        display.close()
    return 0


def children_states(children: Sequence[Child]) -> dict[str, dict[str, object]]:
    """What the state file says of each child: its state, restarts and pid."""
    return {
        child.name: {
            "state": child.state,
            "restarts": child.restarts,
            "pid": child.process.pid if child.process else None,
        }
        for child in children
    }


def stop_all(children: Sequence[Child], grace_s: float = STOP_GRACE_S) -> list[str]:
    """SIGTERM every child, SIGKILL those still running after `grace_s`; returns their names."""
    running = [child for child in children if child.process and child.process.poll() is None]
    for child in running:
        assert child.process is not None  # noqa: S101 (narrowing for the type checker)
        child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    killed = []
    for child in running:
        assert child.process is not None  # noqa: S101
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop within {grace_s:g}s: killing it")
            child.process.kill()
            child.process.wait()
            killed.append(child.name)
    for child in children:
        for thread in child.output:
            thread.join(1.0)  # their last lines before ours
        child.process, child.restart_at = None, None
    return killed


def run_step(argv: list[str], stop: threading.Event) -> int:
    """Run a one-shot setup step; on failure print its error line and return its exit code."""
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    terminated = False
    while True:
        try:
            stdout, stderr = process.communicate(timeout=TICK_S)
            break
        except subprocess.TimeoutExpired:
            if stop.is_set() and not terminated:
                process.terminate()  # stopping: the step has no handler, SIGTERM ends it
                terminated = True
    code = process.returncode
    if stop.is_set():
        return 0
    if code == 0:
        if stdout.strip():
            print(stdout.strip(), flush=True)  # e.g. "db: 1 migration(s) applied"
        return 0
    lines = [line for line in stderr.splitlines() if line.strip()]
    # Exit 2 is a setting the step explained in one line; anything else needs its traceback.
    detail = lines[-1:] if code == SETTINGS_EXIT else lines[-20:]
    step = argv[2] if argv[1:2] == ["-m"] else "setup step"
    for line in detail or [f"exit code {code}, no output"]:
        # The settings line names its step already; a traceback's lines are labelled here.
        print(line if code == SETTINGS_EXIT else labelled(step, line), file=sys.stderr)
    say(f"`{' '.join(['python', *argv[1:]])}` failed (exit {code}); no service started")
    return code if code > 0 else 1


def children_for(selected: Sequence[Service], health: HealthSettings) -> list[Child]:
    """One supervised process per service: `python -m MODULE`, scraped on its health port."""
    return [
        Child(one.name, [sys.executable, "-m", one.module], health_port(health, one.name))
        for one in selected
    ]
