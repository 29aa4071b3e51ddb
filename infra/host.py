"""Talking to the host: progress lines, commands, ports and processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from shared.errors import StackError


def say(message: str) -> None:
    """One progress line; flushed so it lands before the output of the commands that follow."""
    print(f"[stack] {message}", flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


def which(program: str, install_hint: str) -> str:
    """The absolute path of a program, or a StackError saying what to install."""
    path = shutil.which(program)
    if path is None:
        raise StackError(f"`{program}` is not installed; install it: {install_hint}")
    return path


def run(
    args: Sequence[str | Path],
    *,
    capture: bool = True,
    check: bool = True,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a fixed argv (never a shell); raise StackError with its last output line on failure."""
    argv = [str(arg) for arg in args]
    result = subprocess.run(  # noqa: S603 - argv built by this package, no shell
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=capture,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout or "").strip().splitlines()
        detail = output[-1] if output else f"exit code {result.returncode}"
        raise StackError(f"{Path(argv[0]).name} {' '.join(argv[1:2])} failed: {detail}")
    return result


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """Whether pid is a live process (a zombie is dead: it only waits to be reaped)."""
    try:
        # Reap it if it is our own exited child, so it does not linger as a zombie.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself hold spaces.
    return stat.rpartition(")")[2].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    """The argv of a live process, or [] when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def cwd_of(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def pids_running(*args: str) -> list[int]:
    """Live processes whose argv holds every one of `args`."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and all(arg in cmdline(int(entry.name)) for arg in args)
        and pid_alive(int(entry.name))
    ]


def pids_in(directory: Path) -> list[int]:
    """Processes whose working directory is `directory` (PostgreSQL's sit in their data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and cwd_of(int(entry.name)) == directory:
            found.append(int(entry.name))
    return found


def read_pid(pid_file: Path) -> int | None:
    """The pid on the first line of a pid file, or None when it is missing or unreadable."""
    try:
        first = pid_file.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    return int(first) if first.isdigit() else None


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def apt_install(what: str, packages: Sequence[str], missing: str) -> None:
    """Install Debian's `packages` with apt-get (as root), else a StackError saying what to
    install; `missing` says what was not found, `what` names it in the progress line."""
    listed = " ".join(packages)
    if not is_root():
        raise StackError(f"{missing}; install it: sudo apt-get install -y {listed}")
    say(f"{what}: missing; apt-get update && apt-get install -y {listed}")
    apt_get = which("apt-get", f"a Debian/Ubuntu host, or install {listed} yourself")
    # No stdin in CI: debconf must never wait for an answer.
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run([apt_get, "update"], capture=False, env=env)
    run([apt_get, "install", "-y", "--no-install-recommends", *packages], capture=False, env=env)
