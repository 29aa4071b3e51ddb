"""Kill schedules: each consumer of a run killed again and again while bars stream in, at named
failpoints and at random moments, a new member started after each kill."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from tests.chaos.pipeline_run import KINDS, Run
from tests.integration.processes import ServiceProcess, wait_for

# The failpoints that kill (tests/failpoint_service.py), by the kind of consumer that has them.
FAILPOINTS = {
    "storage": ("after_copy", "after_commit"),
    "analytics": ("after_copy", "after_commit"),
    "forecaster": ("after_copy", "after_commit"),
    "relay": ("relay_after_publish",),
}
# Batch sizes a member is started with (a replayed range is cut differently each time).
BATCH_SIZES = (20, 50, 200)


@dataclass(frozen=True)
class Kill:
    """How one member ends: at `failpoint` after `skip` passes of it, or (no failpoint)
    SIGKILLed `after_s` seconds after it began working."""

    failpoint: str = ""
    skip: int = 0
    after_s: float = 0.0
    batch_size: int = 50

    def __str__(self) -> str:
        how = f"{self.failpoint}+{self.skip}" if self.failpoint else f"random {self.after_s:.2f}s"
        return f"{how} (batch {self.batch_size})"


def plan(rng: random.Random, kind: str, random_kills: int, max_skip: int) -> list[Kill]:
    """Each failpoint of `kind` once (in a random order), then `random_kills` random kills.

    The failpoints come first: a member only reaches one while it has bars to write, and early
    on the feed is still running; a random kill needs nothing to do.
    """
    names = list(FAILPOINTS[kind])
    rng.shuffle(names)
    kills = [
        Kill(failpoint=name, skip=rng.randint(0, max_skip), batch_size=rng.choice(BATCH_SIZES))
        for name in names
    ]
    kills += [
        Kill(after_s=rng.uniform(0.0, 1.5), batch_size=rng.choice(BATCH_SIZES))
        for _ in range(random_kills)
    ]
    return kills


class Disturber(threading.Thread):
    """Runs one kind's kills in turn, then starts the member that stays (`finish` re-raises
    what went wrong in the thread)."""

    def __init__(self, run: Run, kind: str, kills: list[Kill], timeout_s: float = 90) -> None:
        super().__init__(name=f"disturb-{kind}", daemon=True)
        self.run_ = run
        self.kind = kind
        self.kills = kills
        self.timeout_s = timeout_s
        self.done: list[str] = []  # each kill done, with the seconds since the start
        self._began = time.monotonic()
        self.error: BaseException | None = None

    def run(self) -> None:
        self._began = time.monotonic()
        try:
            for kill in self.kills:
                self._one(kill)
                self.done.append(f"{time.monotonic() - self._began:.1f}s {kill}")
            self.run_.start(self.kind)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread by finish()
            self.error = exc

    def finish(self, timeout: float) -> None:
        self.join(timeout)
        if self.error is not None:
            raise AssertionError(f"{self.kind}: after {self.done}") from self.error
        assert not self.is_alive(), f"{self.kind}: kills not over within {timeout:g}s"

    def _one(self, kill: Kill) -> None:
        batch = {"CONSUMER_BATCH_SIZE": str(kill.batch_size)}
        if kill.failpoint:
            member = self.run_.start(self.kind, failpoint=kill.failpoint, skip=kill.skip, **batch)
            wait_for(
                lambda: not member.running,
                self.timeout_s,
                f"{self.kind} to reach {kill}",
                detail=member.log,
            )
            self.run_.died(member, kill.failpoint)
            return
        member = self.run_.start(self.kind, **batch)
        wait_for(lambda: working(self.kind, member), self.timeout_s, f"{self.kind} at work")
        time.sleep(kill.after_s)
        self.run_.kill(member)


def working(kind: str, member: ServiceProcess) -> bool:
    """A group member owns partitions; the relay is the active one."""
    if KINDS[kind].group_setting is None:
        return "active" in member.healthz()[1].get("notes", [])
    return member.metrics().get("pipeline_partitions", 0.0) > 0
