"""The status screen's text: each service's state, rates, lag and restarts, then data freshness
per domain. Pure: pipeline/status.py gathers what it shows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pipeline.freshness import Freshness, State
from pipeline.replicas import ReplicaView

RED = "\x1b[31;1m"
GREEN = "\x1b[32m"
YELLOW = "\x1b[33m"
RESET = "\x1b[0m"
REASON_WIDTH = 70


@dataclass(frozen=True)
class ServiceRow:
    """One service as the screen shows it; None where nothing is known."""

    name: str
    state: str  # up, down, restarting(n), stopped, or "?" without a supervisor
    healthy: bool | None
    rate: float | None  # messages per second over the sample
    rows: float | None
    lag: int | None  # its consumer group's summed lag (consumers only)
    restarts: int | None
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    replicas: tuple[ReplicaView, ...] = ()  # each shown on a line of its own when several

    @property
    def red(self) -> bool:
        return self.healthy is False or self.state not in ("up", "?")


@dataclass(frozen=True)
class Screen:
    at: datetime
    services: Sequence[ServiceRow]
    freshness: Sequence[Freshness]
    supervisor: str  # where the states and restarts come from (or why there are none)
    database: str | None = None  # why freshness could not be read, if it could not

    @property
    def red(self) -> bool:
        return (
            any(row.red for row in self.services)
            or any(f.state is State.STALE for f in self.freshness)
            or self.database is not None
        )


def render(screen: Screen, color: bool) -> str:
    """The whole screen as text (ANSI colours when `color`)."""

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{RESET}" if color else text

    verdict = paint("RED", RED) if screen.red else paint("OK", GREEN)
    lines = [
        f"pipeline status {verdict} at {screen.at:%Y-%m-%d %H:%M:%S}Z ({screen.supervisor})",
        "",
        f"{'SERVICE':<22} {'STATE':<14} {'HEALTH':<6} {'MSG/S':>8} {'ROWS':>10} "
        f"{'LAG':>8} {'RESTARTS':>8}",
    ]
    for row in screen.services:
        health = "-" if row.healthy is None else ("ok" if row.healthy else "RED")
        line = (
            f"{row.name:<22} {row.state:<14} {health:<6} {_num(row.rate, '.1f'):>8} "
            f"{_num(row.rows, '.0f'):>10} {_num(row.lag, 'd'):>8} {_num(row.restarts, 'd'):>8}"
        )
        lines.append(paint(line, RED) if row.red else line)
        if len(row.replicas) > 1:
            lines += [_replica_line(replica, paint) for replica in row.replicas]
        for reason in row.reasons:
            lines.append(paint(f"    red: {_clip(reason)}", RED))
        for note in row.notes:
            lines.append(f"    note: {_clip(note)}")
    lines += ["", f"{'DATA':<14} {'NEWEST':<18} {'AGE':>8}  {'STATE':<8} DETAIL"]
    if screen.database is not None:
        lines.append(paint(f"    cannot read freshness: {_clip(screen.database)}", RED))
    for verdict_ in screen.freshness:
        newest = "-" if verdict_.newest is None else f"{verdict_.newest:%Y-%m-%d %H:%M}"
        line = (
            f"{verdict_.domain:<14} {newest:<18} {_age(verdict_.age_s):>8}  "
            f"{verdict_.state.value:<8} {verdict_.detail}"
        )
        if verdict_.state is State.STALE:
            line = paint(line, RED)
        elif verdict_.state is State.EMPTY:
            line = paint(line, YELLOW)
        lines.append(line)
    return "\n".join(lines)


def _replica_line(replica: ReplicaView, paint: Callable[[str, str], str]) -> str:
    health = "-" if replica.healthy is None else ("ok" if replica.healthy else "RED")
    line = (
        f"    #{replica.index:<17} {'up' if replica.up else 'down':<14} {health:<6} "
        f"{_num(replica.rate, '.1f'):>8} {_num(replica.rows, '.0f'):>10}"
    )
    return line if replica.healthy else paint(line, RED)


def _num(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _clip(text: str) -> str:
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 1] + "…"
