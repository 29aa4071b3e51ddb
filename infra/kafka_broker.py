"""A single-node KRaft Kafka broker per profile, run from Maven Central jars."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from infra.host import (
    cmdline,
    pid_alive,
    pids_running,
    port_accepts,
    read_pid,
    run,
    say,
    tail,
    which,
)
from infra.profiles import BIND_HOST, Profile, resolve
from shared.errors import StackError
from shared.settings import project_root

JAVA_HINT = "apt-get install -y openjdk-17-jre-headless maven"
STARTED_LINE = "Kafka Server started"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
# Loggers that would otherwise bury the lines that matter (the config dumps alone are ~900 lines).
QUIET_LOGGERS = (
    "org.apache.kafka.common.config",
    "org.apache.kafka.storage.internals.log",
    "kafka.request.logger",
    "kafka.network.RequestChannel$",
    "kafka.log.LogCleaner",
    "state.change.logger",
    "kafka.authorizer.logger",
    # One line per partition per event: a 12-partition topic would print dozens.
    "kafka.cluster.Partition",
    "kafka.log.LogManager",
    "kafka.server.ReplicaFetcherManager",
    "kafka.server.ReplicaAlterLogDirsManager",
    "org.apache.kafka.coordinator.common.runtime.CoordinatorRuntime",
)


def start_kafka(profile: Profile | str) -> None:
    """Start the profile's broker, or reuse it when it is already running."""
    profile = resolve(profile)
    java = which("java", JAVA_HINT)
    libs = _ensure_jars(profile)
    profile.kafka_dir.mkdir(parents=True, exist_ok=True)
    changed = _write_if_changed(_properties_file(profile), _server_properties(profile))
    changed |= _write_if_changed(_log4j_file(profile), _log4j2_properties())
    pid = _broker_pid(profile)
    if pid is not None:
        stale = "; its config changed: run `down` then `up` to apply it" if changed else ""
        say(f"kafka {profile.kafka_port}: already running (pid {pid}){stale}")
        _pid_file(profile).write_text(f"{pid}\n")
        # It may still be starting (an `up` interrupted by ^C leaves the broker running).
        _wait_ready(profile, partial(pid_alive, pid), lambda: True)
        return
    _remove_stale_pid_file(profile)
    _check_ports_free(profile)
    _format_storage(profile, java, libs)
    _launch(profile, java, libs)


def stop_kafka(profile: Profile | str) -> bool:
    """SIGTERM (a clean shutdown), SIGKILL after 30 s; False if it was not running."""
    profile = resolve(profile)
    pid = _broker_pid(profile)
    if pid is None:
        _pid_file(profile).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        say(f"kafka {profile.kafka_port}: no clean shutdown in {STOP_TIMEOUT_S:.0f}s; killing it")
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.1)
    _pid_file(profile).unlink(missing_ok=True)
    say(f"kafka {profile.kafka_port}: stopped")
    return True


def kafka_status(profile: Profile) -> str:
    if not (_data_dir(profile) / "meta.properties").exists():
        return "not set up"
    pid = _broker_pid(profile)
    return f"running (pid {pid})" if pid else "stopped"


def _data_dir(profile: Profile) -> Path:
    return profile.kafka_dir / "data"


def _logs_dir(profile: Profile) -> Path:
    return profile.kafka_dir / "logs"


def _properties_file(profile: Profile) -> Path:
    return profile.kafka_dir / "server.properties"


def _log4j_file(profile: Profile) -> Path:
    return profile.kafka_dir / "log4j2.properties"


def _pid_file(profile: Profile) -> Path:
    return profile.kafka_dir / "kafka.pid"


def _ensure_jars(profile: Profile) -> Path:
    """Copy the broker's jars from Maven (cached in ~/.m2) once; shared by both profiles."""
    libs = profile.kafka_libs_dir
    if libs.is_dir():
        return libs
    mvn = which("mvn", JAVA_HINT)
    libs.parent.mkdir(parents=True, exist_ok=True)
    # Download into a scratch dir renamed when complete: an interrupted copy is never used.
    scratch = libs.with_name(f"{libs.name}.tmp-{os.getpid()}")
    for leftover in libs.parent.glob(f"{libs.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    say("kafka: downloading Kafka jars from Maven Central (cached in ~/.m2)…")
    started = time.monotonic()
    pom = project_root() / "infra" / "pom.xml"
    copy = ["dependency:copy-dependencies", f"-DoutputDirectory={scratch}"]
    # Captured (mvn -q still prints colour codes) and shown only when it fails.
    result = run([mvn, "-q", "-B", "-f", pom, *copy], check=False)
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        raise StackError("mvn could not copy the Kafka jars (its output is above)")
    if not any(scratch.glob("kafka_2.13-*.jar")):
        raise StackError(f"mvn finished but {scratch} holds no kafka_2.13 jar")
    scratch.rename(libs)
    jars = len(list(libs.glob("*.jar")))
    say(f"kafka: {jars} jars in {libs} ({time.monotonic() - started:.1f}s)")
    return libs


def _server_properties(profile: Profile) -> str:
    kafka, ctrl = profile.kafka_port, profile.controller_port
    properties = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # Static voters: the storage is formatted without --standalone (4.1 rejects both).
        "controller.quorum.voters": f"1@{BIND_HOST}:{ctrl}",
        "listeners": f"PLAINTEXT://{BIND_HOST}:{kafka},CONTROLLER://{BIND_HOST}:{ctrl}",
        "advertised.listeners": f"PLAINTEXT://{BIND_HOST}:{kafka}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(_data_dir(profile)),
        "num.partitions": "1",
        # 12 instead of 50 partitions: the first consumer group comes up in a few seconds.
        "offsets.topic.num.partitions": "12",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # A broker restarted after kill -9 cannot register until its old session expires
        # (default 9 s); a single local node can afford a short session.
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "2000",
        # The default 3 s delay before the first rebalance makes every test wait.
        "group.initial.rebalance.delay.ms": "0",
        # Topics come from the setup step only: a producer that starts first must not create one.
        "auto.create.topics.enable": "false",
    }
    header = f"# Written by infra/kafka_broker.py for the {profile.name} profile; edits are lost.\n"
    return header + "".join(f"{key}={value}\n" for key, value in properties.items())


def _log4j2_properties() -> str:
    lines = [
        "# Written by infra/kafka_broker.py; edits are lost.",
        "status = warn",
        "appender.file.type = RollingFile",
        "appender.file.name = file",
        "appender.file.fileName = ${sys:kafka.logs.dir}/server.log",
        "appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i",
        "appender.file.layout.type = PatternLayout",
        "appender.file.layout.pattern = [%d] %p %m (%c)%n",
        "appender.file.policies.type = Policies",
        "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
        "appender.file.policies.size.size = 10MB",
        "appender.file.strategy.type = DefaultRolloverStrategy",
        "appender.file.strategy.max = 3",
        "rootLogger.level = INFO",
        "rootLogger.appenderRef.file.ref = file",
    ]
    for index, name in enumerate(QUIET_LOGGERS):
        lines += [f"logger.quiet{index}.name = {name}", f"logger.quiet{index}.level = WARN"]
    return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, content: str) -> bool:
    if path.exists() and path.read_text() == content:
        return False
    path.write_text(content)
    return True


def _broker_pid(profile: Profile) -> int | None:
    """Our broker's pid: the pid file's if that is still our broker (pids are reused after a
    kill -9), else found by its command line (the pid file may have been deleted)."""
    ours = ("kafka.Kafka", str(_properties_file(profile)))
    pid = read_pid(_pid_file(profile))
    if pid is not None and pid_alive(pid) and all(arg in cmdline(pid) for arg in ours):
        return pid
    found = pids_running(*ours)
    return found[0] if found else None


def _remove_stale_pid_file(profile: Profile) -> None:
    pid_file = _pid_file(profile)
    if pid_file.exists():
        pid_file.unlink()
        say(f"kafka {profile.kafka_port}: removed a stale pid file (that broker was killed)")


def _check_ports_free(profile: Profile) -> None:
    if port_accepts(BIND_HOST, profile.kafka_port):
        raise StackError(
            f"KAFKA_BOOTSTRAP_SERVERS={profile.kafka_address} is in use by another process, "
            f"not the {profile.name} stack's broker (pid file {_pid_file(profile)})"
        )
    if port_accepts(BIND_HOST, profile.controller_port):
        raise StackError(
            f"{BIND_HOST}:{profile.controller_port} (the {profile.name} stack's Kafka controller "
            "port) is in use by another process"
        )


def _format_storage(profile: Profile, java: str, libs: Path) -> None:
    data = _data_dir(profile)
    if (data / "meta.properties").exists():
        return
    # No meta.properties means never formatted, or interrupted: start from an empty dir.
    shutil.rmtree(data, ignore_errors=True)
    classpath = f"{libs}/*"
    cluster_id = run([java, "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"]).stdout
    storage_tool = [java, "-cp", classpath, "kafka.tools.StorageTool", "format"]
    run([*storage_tool, "-t", cluster_id.strip(), "-c", _properties_file(profile)])
    say(f"kafka {profile.kafka_port}: formatted {data}")


def _launch(profile: Profile, java: str, libs: Path) -> None:
    log = _logs_dir(profile) / "server.log"
    log.parent.mkdir(exist_ok=True)
    log_offset = log.stat().st_size if log.exists() else 0
    command = [
        java, "-Xmx512m", "-Xms256m", "-XX:+UseG1GC",
        f"-Dlog4j2.configurationFile={_log4j_file(profile)}",
        f"-Dkafka.logs.dir={_logs_dir(profile)}",
        "-cp", f"{libs}/*", "kafka.Kafka", str(_properties_file(profile)),
    ]  # fmt: skip
    say(f"kafka {profile.kafka_port}: starting (log: {log})")
    started = time.monotonic()
    out = profile.kafka_dir / "kafka.out"
    with out.open("wb") as sink:
        # A session of its own: the broker outlives this command and ignores the terminal's ^C.
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=profile.kafka_dir,
            start_new_session=True,
        )
    _pid_file(profile).write_text(f"{process.pid}\n")
    _wait_ready(profile, lambda: process.poll() is None, partial(_logged_since, log, log_offset))
    say(f"kafka {profile.kafka_port}: started in {time.monotonic() - started:.1f}s")


def _wait_ready(
    profile: Profile, alive: Callable[[], bool], logged_start: Callable[[], bool]
) -> None:
    """Ready when the port accepts connections and the log says so; fail fast if it dies."""
    log = _logs_dir(profile) / "server.log"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive():
            _fail_start(profile, log, "the broker exited")
        if port_accepts(BIND_HOST, profile.kafka_port) and logged_start():
            return
        time.sleep(0.1)
    _fail_start(profile, log, f"not ready after {START_TIMEOUT_S:.0f}s (still running)")


def _logged_since(log: Path, offset: int) -> bool:
    try:
        with log.open("rb") as handle:
            # A rollover may have shrunk the file: then read it from the start.
            handle.seek(offset if log.stat().st_size >= offset else 0)
            return STARTED_LINE.encode() in handle.read()
    except OSError:
        return False


def _fail_start(profile: Profile, log: Path, reason: str) -> None:
    out = profile.kafka_dir / "kafka.out"
    print(f"--- last lines of {log}:\n{tail(log)}", file=sys.stderr)
    print(f"--- last lines of {out}:\n{tail(out)}", file=sys.stderr)
    raise StackError(f"kafka {profile.kafka_port} did not start: {reason} (log: {log})")
