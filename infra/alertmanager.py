"""Prometheus Alertmanager for the alert relay's tests: Debian's package, installed when missing."""

from __future__ import annotations

import shutil
from pathlib import Path

from infra.host import apt_install
from shared.errors import StackError

PACKAGE = "prometheus-alertmanager"
# Debian installs the binary under the package's name; upstream tarballs call it `alertmanager`.
PROGRAMS = ("prometheus-alertmanager", "alertmanager")
# Receives everything and sends nothing: the tests read the alerts back through the API.
MINIMAL_CONFIG = """\
route:
  receiver: discard
receivers:
  - name: discard
"""


def find_alertmanager() -> Path | None:
    for program in PROGRAMS:
        found = shutil.which(program) or shutil.which(program, path="/usr/bin:/usr/sbin")
        if found:
            return Path(found)
    return None


def ensure_alertmanager() -> Path:
    """The Alertmanager binary; apt-get installs Debian's package first when it is missing (as
    root), else a StackError says what to install."""
    found = find_alertmanager()
    if found is not None:
        return found
    # The package's own service is not wanted (tests start their own on a free port):
    # policy-rc.d-less containers skip it anyway.
    apt_install("alertmanager", [PACKAGE], f"Alertmanager not found ({' or '.join(PROGRAMS)})")
    found = find_alertmanager()
    if found is None:
        raise StackError(f"apt-get installed {PACKAGE} but no {' or '.join(PROGRAMS)} is on PATH")
    return found


def alertmanager_argv(binary: Path, workdir: Path, host: str, port: int) -> list[str]:
    """Run one Alertmanager on host:port with its config and storage under `workdir` and
    clustering off (otherwise it binds the gossip port 9094 on every interface)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    config.write_text(MINIMAL_CONFIG)
    storage = workdir / "data"
    storage.mkdir(exist_ok=True)
    return [
        str(binary),
        f"--config.file={config}",
        f"--storage.path={storage}",
        f"--web.listen-address={host}:{port}",
        "--cluster.listen-address=",
    ]
