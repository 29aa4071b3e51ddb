"""Run pipeline services as real OS processes in tests: start, signal, scrape /metrics."""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO_ROOT

EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A port free now, outside the ephemeral range (see free_port_range)."""
    return free_port_range(0)


def free_port_range(span: int) -> int:
    """A base port such that base .. base+span are all free now (for HEALTH_BASE_PORT). The
    base is random so xdist workers asking at the same moment do not get the same range, and
    below the kernel's ephemeral ports: a port free now but in that range may be any client
    connection's source port a moment later (a service then fails to bind its health port)."""
    return free_base(lambda base: range(base, base + span + 1), span)


def handed_out_file() -> Path:
    """The ports this test run has handed out, one per line, shared by its xdist workers."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
    return Path(tempfile.gettempdir()) / f"pipeline-test-ports-{run}"


def free_base(ports_of: Callable[[int], Iterable[int]], span: int, step: int = 1) -> int:
    """A random base port, a multiple of `step`, with base + span below the kernel's ephemeral
    ports (the source ports of outgoing connections; Linux's range, else IANA's), whose
    `ports_of(base)` are all free now and were never handed out before in this test run.

    Free now is not enough: a port is free from the moment it is drawn until the service given
    it binds it, and another worker drawing then could get it too (a service then failed to
    start: "health port … is unavailable (Address already in use)"). So every port handed out
    is written to `handed_out_file()` under a lock, and never drawn again."""
    try:
        lowest_ephemeral = int(EPHEMERAL_PORTS.read_text().split()[0])
    except OSError:
        lowest_ephemeral = 49152
    with handed_out_file().open("a+") as registry:
        fcntl.flock(registry, fcntl.LOCK_EX)  # released when the file closes
        registry.seek(0)
        taken = {int(line) for line in registry.read().split()}
        for _ in range(200):
            base = random.randrange(10000, lowest_ephemeral - span, step)  # noqa: S311
            ports = list(ports_of(base))
            if taken.intersection(ports):
                continue
            try:
                for port in ports:
                    with socket.socket() as sock:
                        sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            registry.write("".join(f"{port}\n" for port in ports))
            return base
    raise AssertionError("no free ports")


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    step: float = 0.2,
    detail: Callable[[], object] | None = None,
) -> None:
    """Poll `condition` until true; on timeout fail with `what` and, when given, `detail()`
    (a service's log or health) so a failure in CI explains itself."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    explained = f"\n{detail()}" if detail is not None else ""
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{explained}")


def answer(port: int, path: str) -> tuple[int, str]:
    """Status and body of a GET on loopback (0 and the reason when nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:  # noqa: S310 - loopback http
            return reply.status, reply.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


def replay_pipeline_env(
    service_env: dict[str, str], base_port: int, **extra: str
) -> dict[str, str]:
    """The environment of `start_pipeline.py` on the recorded responses, every service's health
    on HEALTH_BASE_PORT + its offset (`extra` adds or overrides settings)."""
    env = {
        **service_env,
        "DATA_SOURCE": "replay",
        "MARKET_REQUESTS_PER_MINUTE": "600",
        "HEALTH_BASE_PORT": str(base_port),
        **extra,
    }
    env.pop("HEALTH_PORT", None)
    return env


def start_supervisor(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`start_pipeline.py` (every service, supervised), its output in `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "start_pipeline.py", "--status-every", "1"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def processes_with(marker: bytes) -> list[int]:
    """Pids of the processes whose environment holds `marker` (a NAME=value entry)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


class ServiceProcess:
    """One `python -m MODULE` child with its own health port and log file."""

    def __init__(
        self,
        module: str,
        env: dict[str, str],
        log_dir: Path,
        *,
        failpoint: str = "",
        stall_s: float = 0.0,
        skip: int = 0,
        port: int | None = None,
        **extra_env: str,
    ) -> None:
        """`failpoint`: run through tests.failpoint_service with that hook installed (`skip`:
        passes of a kill point before it kills); `port`: its health port (a free one when None)."""
        self.module = module
        self.port = free_port() if port is None else port
        self.env = {**env, "HEALTH_PORT": str(self.port), **extra_env}
        self.log_path = log_dir / f"{module}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.argv = [sys.executable, "-m", module]
        if failpoint:
            self.argv[2:] = ["tests.failpoint_service", "--failpoint", failpoint]
            self.argv += ["--stall-s", str(stall_s), "--skip", str(skip), module]

    def start(self) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(lambda: self._answers() or not self.running, 60, f"{self.module} health port")
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=1).close()
        except (urllib.error.URLError, OSError):
            return False
        return True

    def metrics(self) -> dict[str, float]:
        """Samples summed over labels, by sample name (e.g. pipeline_upsert_conflicts_total)."""
        totals: dict[str, float] = {}
        for (name, _), value in self.samples().items():
            totals[name] = totals.get(name, 0.0) + value
        return totals

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics by (name, sorted labels)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def healthz(self) -> tuple[int, dict[str, object]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait: a clean stop exits 0."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.module} did not stop within {timeout}s") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def conflicts_before_kill(self) -> float:
        """The upsert conflicts a process killed at a failpoint had counted (0 if none)."""
        marker = "conflicts before kill: "
        lines = [line for line in self.log().splitlines() if line.startswith(marker)]
        return sum(float(line.removeprefix(marker)) for line in lines)


def assert_api_idles(
    module: str,
    env: dict[str, str],
    log_dir: Path,
    message: str,
    refused: Path | None = None,
    *,
    red: bool = True,
    **extra_env: str,
) -> None:
    """A producer that may not call its API says `message` once in its log and in its health,
    and stays up: a refused key (an injected 401 queued three times in `refused`, asked once)
    as a red reason; no key in live mode (`red=False`) as a note of a green service."""
    service = ServiceProcess(module, env, log_dir, **extra_env).start()
    expected, field = (503, "reasons") if red else (200, "notes")
    try:
        wait_for(
            lambda: message in json.dumps(service.healthz()[1].get(field)), 30, f"{field} to say so"
        )
        time.sleep(2)  # several poll intervals
        status, body = service.healthz()
        assert service.running and status == expected
        assert message in json.dumps(body[field])
        if refused is not None:
            assert len(json.loads(refused.read_text())["responses"]) == 2
        assert service.log().count(message) == 1
    finally:
        assert service.stop() == 0


# Fast group membership: a member killed with SIGKILL leaves the group after 6 s (the broker's
# minimum session timeout), and idle polls return quickly.
FAST_MEMBER = {"CONSUMER_SESSION_TIMEOUT_MS": "6000", "CONSUMER_POLL_TIMEOUT_S": "0.2"}


def storage_member(env: dict[str, str], log_dir: Path, group: str, **extra: Any) -> ServiceProcess:
    """A consumer.storage process in consumer group `group`."""
    return ServiceProcess(
        "consumer.storage", env, log_dir, CONSUMER_GROUP_STORAGE=group, **FAST_MEMBER, **extra
    )
