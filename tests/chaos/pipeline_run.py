"""One run of the consumers (storage, analytics, forecaster, alert relay) on a database of its
own, reading the test's topics: its members as OS processes, and the upsert conflicts every
member that ever ran counted, however it ended (stopped, killed at random, killed at a
failpoint)."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg

from shared.kafka import Topics
from shared.settings import KafkaSettings, PostgresSettings
from tests.integration.bar_stream import end_offsets, stored_offsets
from tests.integration.processes import FAST_MEMBER, ServiceProcess, processes_with, wait_for
from tests.integration.test_alert_delivery import FAST_RELAY


@dataclass(frozen=True)
class Kind:
    """A consumer of the pipeline: its module and the setting naming its group (None: the
    relay, which is no group member; one instance is active at a time, by an advisory lock)."""

    module: str
    group_setting: str | None


KINDS = {
    "storage": Kind("consumer.storage", "CONSUMER_GROUP_STORAGE"),
    "analytics": Kind("analytics.consumer", "CONSUMER_GROUP_ANALYTICS"),
    "forecaster": Kind("analytics.forecaster", "CONSUMER_GROUP_FORECASTER"),
    "relay": Kind("analytics.alert_relay", None),
}
# Settings of every run, disturbed or not: small forecaster windows so short series get
# origins, a fit budget no busy machine runs out of (a `timeout` outcome is per run), and fits in
# the consumer's own process (a pool's processes cost seconds of CPU at every start after a
# kill; the long form keeps the pool, and tests/integration/test_fit_pool_crash.py its crash).
TUNING = {
    **FAST_MEMBER,
    **FAST_RELAY,
    "FORECAST_MIN_BARS": "30",
    "FORECAST_WINDOW": "40",
    "FORECAST_EVERY": "15",
    "FORECAST_WORKERS": "0",
    "FORECAST_TIME_BUDGET_S": "30",
}
# Alert events the relay has not finished with: not on the topic yet, or a sink's marker unset.
UNRELAYED = (
    "SELECT count(*) FROM alert_events WHERE published_at IS NULL"
    " OR webhook_delivered_at IS NULL OR alertmanager_delivered_at IS NULL"
)


class Run:
    """The consumers of one run: started, stopped and killed here, so that every member's
    conflicts are counted (`conflicts`) and none outlives the test (`close`)."""

    def __init__(
        self,
        name: str,
        service_env: dict[str, str],
        pg: PostgresSettings,
        kafka: KafkaSettings,
        log_dir: Path,
        **settings: str,
    ) -> None:
        self.name = name
        self.pg = pg
        self.kafka = kafka
        self.topic = Topics(kafka.topic_prefix).market_bars
        self.log_dir = log_dir / name
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**service_env, "POSTGRES_DBNAME": pg.dbname, **TUNING, **settings}
        tag = uuid.uuid4().hex[:8]
        self.groups = {kind: f"{kind}-{name}-{tag}" for kind, k in KINDS.items() if k.group_setting}
        self.members: list[ServiceProcess] = []
        # (member, its conflicts, how it ended) of every member that ended
        self.ended: list[tuple[str, float, str]] = []
        self._lock = threading.Lock()

    def start(self, kind: str, **extra: object) -> ServiceProcess:
        """A new member of `kind` (`extra`: failpoint=, skip=, or settings)."""
        spec = KINDS[kind]
        group = {spec.group_setting: self.groups[kind]} if spec.group_setting else {}
        member = ServiceProcess(spec.module, self.env, self.log_dir, **group, **extra)  # type: ignore[arg-type]
        with self._lock:
            self.members.append(member)
        return member.start()

    def start_each(self, counts: dict[str, int] | None = None) -> list[ServiceProcess]:
        """`counts[kind]` members of each kind (one of each by default), started side by side
        (one after the other, their imports alone take seconds on a busy machine)."""
        kinds = [kind for kind in KINDS for _ in range((counts or {}).get(kind, 1))]
        with ThreadPoolExecutor(min(len(kinds), 4)) as starting:
            return list(starting.map(self.start, kinds))

    def live(self, kind: str) -> list[ServiceProcess]:
        module = KINDS[kind].module
        return [m for m in self.members if m.module == module and m.running]

    def kill(self, member: ServiceProcess) -> None:
        """SIGKILL at a random point, its conflicts read from /metrics just before (a conflict in
        the last instant would go uncounted: the failpoint kills count theirs exactly)."""
        conflicts = conflicts_of(member)
        assert member.process is not None and member.running, member.log()
        member.process.send_signal(signal.SIGKILL)
        assert member.wait_exit(30) == -signal.SIGKILL
        self._ended(member, conflicts, "killed")

    def died(self, member: ServiceProcess, failpoint: str) -> None:
        """A member that killed itself at `failpoint`; it printed its conflicts first."""
        assert member.wait_exit(30) == -signal.SIGKILL, member.log()
        assert f"failpoint {failpoint}" in member.log()
        self._ended(member, member.conflicts_before_kill(), f"killed at {failpoint}")

    def stop(self, member: ServiceProcess) -> None:
        """SIGTERM: a clean stop exits 0."""
        conflicts = conflicts_of(member)
        assert member.stop() == 0, member.log()
        self._ended(member, conflicts, "stopped")

    def _ended(self, member: ServiceProcess, conflicts: float, how: str) -> None:
        with self._lock:
            self.ended.append((f"{member.module}:{member.port}", conflicts, how))

    def conflicts(self) -> float:
        return sum(conflicts for _, conflicts, _ in self.ended)

    def done(self) -> bool:
        """Every group's stored offsets at the end offsets of market.bars, every alert event
        on the topic and marked by each sink."""
        ends = {p: end for p, end in end_offsets(self.kafka, self.topic).items() if end > 0}
        for group in self.groups.values():
            if stored_offsets(self.pg, group, self.topic) != ends:
                return False
        with psycopg.connect(self.pg.conninfo()) as conn:
            return conn.execute(UNRELAYED).fetchone()[0] == 0

    def wait_done(self, timeout: float) -> None:
        wait_for(self.done, timeout, f"run {self.name} to finish", step=1.0, detail=self.status)

    def status(self) -> str:
        """Where each group stands, for a failure message."""
        ends = end_offsets(self.kafka, self.topic)
        lines = [f"end offsets {ends}"]
        for kind, group in self.groups.items():
            lines.append(f"{kind}: {stored_offsets(self.pg, group, self.topic)}")
        lines.append(f"live: {[f'{m.module}:{m.port}' for m in self.members if m.running]}")
        return "\n".join(lines)

    def stop_all(self) -> None:
        """Stop every live member cleanly (counting its conflicts)."""
        for member in list(self.members):
            if member.running:
                self.stop(member)

    def leftovers(self) -> list[int]:
        """Processes of this run still alive: its members and whatever they started (fit
        workers, their forkserver), found by the database name in their environment."""
        return processes_with(f"POSTGRES_DBNAME={self.pg.dbname}".encode())

    def close(self) -> None:
        """Whatever is still running after a failure: killed, never left behind."""
        for member in self.members:
            if member.running and member.process is not None:
                member.process.kill()
                member.process.wait(30)
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def conflicts_of(member: ServiceProcess) -> float:
    return member.metrics().get("pipeline_upsert_conflicts_total", 0.0)


class CpuClock:
    """CPU seconds since it was made: of the test process, and of the services it started and
    reaped (printed with the wall time: on a shared machine the wall time says little alone)."""

    def __init__(self) -> None:
        self._start = self._now()

    @staticmethod
    def _now() -> tuple[float, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime

    def __str__(self) -> str:
        own, children = (now - then for now, then in zip(self._now(), self._start, strict=True))
        return f"cpu_s_test={own:.1f} cpu_s_services={children:.1f}"
