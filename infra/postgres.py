"""A private PostgreSQL cluster per profile, run with the distribution's server binaries."""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import stat
import sys
import tempfile
import time
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING

from infra.host import (
    cwd_of,
    is_root,
    pid_alive,
    pids_in,
    port_accepts,
    read_pid,
    run,
    say,
    tail,
    which,
)
from infra.profiles import BIND_HOST, Profile, resolve
from shared.errors import StackError
from shared.settings import PostgresSettings, build

if TYPE_CHECKING:
    import psycopg

PG_ROOT = Path("/usr/lib/postgresql")
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
CLUSTER_USER = "postgres"
# Unix socket paths are limited to 108 bytes (sun_path); deep checkouts need a shorter home.
MAX_SOCKET_PATH = 100
# Server-wide settings, so every database and session on the cluster starts with them. TimeZone:
# initdb copies the host's zone into postgresql.conf, and a session in New York would see
# `ts::date` of a daily bar (00:00 UTC) as the day before.
SERVER_SETTINGS = {"timezone": "UTC"}


def start_postgres(profile: Profile | str, settings: PostgresSettings | None = None) -> None:
    """Start the profile's cluster (creating it on first use), apply SERVER_SETTINGS and make
    sure the database exists."""
    profile = resolve(profile)
    settings = settings or build(PostgresSettings)
    bin_dir = _server_bin_dir()
    _prepare_dirs(profile)
    pid = _postmaster_pid(profile)
    if pid is not None:
        say(f"postgres {profile.postgres_port}: already running (pid {pid})")
    else:
        if not _data_dir(profile).is_dir():
            _initdb(profile, bin_dir, settings)
        _start(profile, bin_dir)
    _configure_cluster(profile, settings)


def stop_postgres(profile: Profile | str) -> bool:
    """Stop the cluster (fast: open transactions roll back); False if it was not running."""
    profile = resolve(profile)
    if _postmaster_pid(profile) is None:
        return False
    bin_dir = _find_bin_dir()
    if bin_dir is None:
        raise StackError(f"cannot stop postgres {profile.postgres_port}: pg_ctl not found")
    pg_ctl = [bin_dir / "pg_ctl", "-D", _data_dir(profile), "-m", "fast", "-w", "-t", "60", "stop"]
    run(_as_cluster_owner(pg_ctl), cwd=profile.postgres_dir)
    say(f"postgres {profile.postgres_port}: stopped")
    return True


def remove_socket_dir(profile: Profile) -> None:
    """`clean` removes the profile dir; a socket dir moved to the temp dir goes separately."""
    socket_dir = _socket_dir(profile)
    if not socket_dir.is_relative_to(profile.root):
        shutil.rmtree(socket_dir, ignore_errors=True)


def postgres_status(profile: Profile) -> str:
    if not _data_dir(profile).is_dir():
        return "not set up"
    pid = _postmaster_pid(profile)
    return f"running (pid {pid})" if pid else "stopped"


def _data_dir(profile: Profile) -> Path:
    return profile.postgres_dir / "data"


def _log_file(profile: Profile) -> Path:
    return profile.postgres_dir / "postgres.log"


def _socket_dir(profile: Profile) -> Path:
    preferred = profile.postgres_dir / "sock"
    if len(str(preferred / f".s.PGSQL.{profile.postgres_port}")) <= MAX_SOCKET_PATH:
        return preferred
    digest = sha256(str(profile.root).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"pipeline-pg-{profile.name}-{digest}"


def client_program(name: str) -> Path:
    """`pg_dump`, `pg_restore`, `psql`… of the server version the stack runs (the runbook's
    backup and restore, and its test)."""
    return _server_bin_dir() / name


def _find_bin_dir() -> Path | None:
    """The newest installed server version's bin dir (Debian keeps one dir per major version),
    else the dir of an initdb on PATH (other distributions, Homebrew)."""
    candidates = [
        path.parent
        for path in PG_ROOT.glob("*/bin/initdb")
        if path.parent.parent.name.isdigit() and _has_server_programs(path.parent)
    ]
    newest = max(candidates, key=lambda bin_dir: int(bin_dir.parent.name), default=None)
    on_path = shutil.which("initdb")
    if newest is None and on_path and _has_server_programs(Path(on_path).resolve().parent):
        return Path(on_path).resolve().parent
    return newest


def _has_server_programs(bin_dir: Path) -> bool:
    return all((bin_dir / name).exists() for name in SERVER_PROGRAMS)


def _server_bin_dir() -> Path:
    bin_dir = _find_bin_dir()
    if bin_dir is not None:
        return bin_dir
    if not is_root():
        raise StackError(
            f"PostgreSQL server binaries not found in {PG_ROOT}/<version>/bin; "
            "install them: sudo apt-get install -y postgresql"
        )
    _apt_install_postgresql()
    bin_dir = _find_bin_dir()
    if bin_dir is None:
        raise StackError(f"apt-get installed postgresql but {PG_ROOT}/<version>/bin is missing")
    return bin_dir


def _apt_install_postgresql() -> None:
    say("postgres: server binaries missing; apt-get update && apt-get install -y postgresql")
    apt_get = which("apt-get", "a Debian/Ubuntu host, or install PostgreSQL's server yourself")
    # CI has no stdin: never let debconf wait for an answer.
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run([apt_get, "update"], capture=False, env=env)
    run([apt_get, "install", "-y", "postgresql"], capture=False, env=env)


def _cluster_owner() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(CLUSTER_USER)
    except KeyError:
        raise StackError(
            "initdb refuses to run as root and the unprivileged 'postgres' user is missing; "
            "install it: apt-get install -y postgresql"
        ) from None


def _as_cluster_owner(args: list[str | Path]) -> list[str | Path]:
    """initdb and pg_ctl refuse to run as root: as root, run them as Debian's `postgres` user."""
    if not is_root():
        return args
    return [which("runuser", "apt-get install -y util-linux"), "-u", CLUSTER_USER, "--", *args]


def _prepare_dirs(profile: Profile) -> None:
    profile.root.mkdir(parents=True, exist_ok=True)
    for directory in (profile.postgres_dir, _socket_dir(profile)):
        directory.mkdir(mode=0o700, exist_ok=True)
        if is_root():
            owner = _cluster_owner()
            os.chown(directory, owner.pw_uid, owner.pw_gid)
    if is_root():
        _ensure_reachable(profile.postgres_dir)


def _cluster_owner_can_enter(path: Path) -> bool:
    check = [which("runuser", "apt-get install -y util-linux"), "-u", CLUSTER_USER, "--"]
    return run([*check, "test", "-x", path], check=False).returncode == 0


def _ensure_reachable(target: Path) -> None:
    """The checkout may sit under a mode-700 dir (mktemp -d): the postgres user must get through."""
    if _cluster_owner_can_enter(target):
        return
    changed = []
    for directory in reversed(target.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            # Search only (o+x), not read: others can pass through but cannot list the dir.
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            changed.append(str(directory))
    if changed:
        say(f"postgres: added o+x (search only) to {', '.join(changed)} for the postgres user")
    if not _cluster_owner_can_enter(target):
        raise StackError(f"the postgres user cannot reach {target}; give it search (x) access")


def _locale() -> str:
    locale = shutil.which("locale")
    if locale is None:
        return "C"
    names = run([locale, "-a"], check=False).stdout.split()
    return "C.UTF-8" if any(name.lower() in ("c.utf8", "c.utf-8") for name in names) else "C"


def _initdb(profile: Profile, bin_dir: Path, settings: PostgresSettings) -> None:
    # initdb into a scratch dir renamed when complete: an interrupted run is never mistaken for
    # a cluster (the data dir path is not recorded inside the cluster, so a rename is safe).
    scratch = profile.postgres_dir / "data.initdb"
    shutil.rmtree(scratch, ignore_errors=True)
    say(f"postgres {profile.postgres_port}: creating the cluster in {_data_dir(profile)}")
    pwfile = _password_file(profile, settings)
    try:
        initdb = [
            bin_dir / "initdb", "-D", scratch, "-U", settings.user,
            "--auth-host=scram-sha-256", "--auth-local=trust", "--pwfile", pwfile,
            "-E", "UTF8", f"--locale={_locale()}",
        ]  # fmt: skip
        run(_as_cluster_owner(initdb), cwd=profile.postgres_dir)
    finally:
        pwfile.unlink(missing_ok=True)
    scratch.rename(_data_dir(profile))


def _password_file(profile: Profile, settings: PostgresSettings) -> Path:
    """POSTGRES_PASSWORD for initdb --pwfile: mode 600, readable by the cluster owner only."""
    fd, name = tempfile.mkstemp(prefix="pwfile.", dir=profile.postgres_dir)
    with os.fdopen(fd, "w") as handle:
        handle.write(settings.password.get_secret_value() + "\n")
    if is_root():
        owner = _cluster_owner()
        os.chown(name, owner.pw_uid, owner.pw_gid)
    return Path(name)


def _postmaster_pid(profile: Profile) -> int | None:
    """Our postmaster's pid: alive and sitting in our data dir (a reused pid sits elsewhere)."""
    data = _data_dir(profile)
    pid = read_pid(data / "postmaster.pid")
    if pid is not None and pid_alive(pid) and cwd_of(pid) == data:
        return pid
    return None


def _clear_stale_pid_file(profile: Profile) -> None:
    """A postmaster killed with -9 leaves its pid file; its children exit soon after."""
    data = _data_dir(profile)
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return
    deadline = time.monotonic() + 15
    while (orphans := pids_in(data)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if orphans:
        raise StackError(f"processes {orphans} of a killed postgres still use {data}; stop them")
    pid_file.unlink()
    say(f"postgres {profile.postgres_port}: removed a stale postmaster.pid (the server was killed)")


def _start(profile: Profile, bin_dir: Path) -> None:
    port = profile.postgres_port
    if port_accepts(BIND_HOST, port):
        raise StackError(
            f"POSTGRES_PORT={port}: {BIND_HOST}:{port} is in use by another process, "
            f"not the {profile.name} stack's cluster in {_data_dir(profile)}"
        )
    _clear_stale_pid_file(profile)
    log = _log_file(profile)
    # pg_ctl hands -o to a shell: quote the socket dir.
    socket_dir = shlex.quote(str(_socket_dir(profile)))
    options = f"-p {port} -k {socket_dir} -c listen_addresses={BIND_HOST}"
    data = _data_dir(profile)
    pg_ctl = [bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "-t", "60"]
    started = time.monotonic()
    result = run(_as_cluster_owner([*pg_ctl, "start"]), check=False, cwd=profile.postgres_dir)
    if result.returncode != 0:
        print(f"--- last lines of {log}:\n{tail(log)}", file=sys.stderr)
        raise StackError(f"postgres {port} did not start (log: {log})")
    say(f"postgres {port}: started in {time.monotonic() - started:.1f}s (log: {log})")


def _configure_cluster(profile: Profile, settings: PostgresSettings) -> None:
    """Apply SERVER_SETTINGS, CREATE DATABASE POSTGRES_DBNAME if missing (connecting to
    `postgres` over TCP)."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(
            host=BIND_HOST,
            port=profile.postgres_port,
            dbname="postgres",
            user=settings.user,
            password=settings.password.get_secret_value(),
            connect_timeout=settings.connect_timeout_s,
            autocommit=True,
        ) as conn:
            _apply_server_settings(conn, profile)
            query = "SELECT 1 FROM pg_database WHERE datname = %s"
            if conn.execute(query, (settings.dbname,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.dbname)))
                say(f"postgres {profile.postgres_port}: created database {settings.dbname}")
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise StackError(
            f"POSTGRES_USER={settings.user} cannot connect to the {profile.name} stack's cluster "
            f"on {profile.postgres_address}: {reason} (a cluster made with another user or "
            f"password is recreated by `python -m infra.stack clean --profile {profile.name}`)"
        ) from None


def _apply_server_settings(conn: psycopg.Connection, profile: Profile) -> None:
    """ALTER SYSTEM each SERVER_SETTINGS entry the config files do not hold yet, then reload: a
    cluster created (or running) before a setting was added gets it without a restart."""
    from psycopg import sql

    missing = {
        name: value
        for name, value in SERVER_SETTINGS.items()
        if conn.execute(
            "SELECT 1 FROM pg_file_settings WHERE name = %s AND setting = %s AND applied",
            (name, value),
        ).fetchone()
        is None
    }
    for name, value in missing.items():
        conn.execute(
            sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
        )
    if missing:
        conn.execute("SELECT pg_reload_conf()")
        shown = ", ".join(f"{name} = {value!r}" for name, value in missing.items())
        say(f"postgres {profile.postgres_port}: set {shown} (ALTER SYSTEM, reloaded)")
