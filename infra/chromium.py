"""Headless Chromium for the dashboard's browser test: Debian's package, installed when missing."""

from __future__ import annotations

import shutil
from pathlib import Path

from infra.host import apt_install
from shared.errors import StackError

# Debian's browser and the driver built from the same source (always the same version).
PACKAGES = ("chromium", "chromium-driver")
# Debian names the browser `chromium`; other distributions `chromium-browser`.
BROWSERS = ("chromium", "chromium-browser")
DRIVER = "chromedriver"


def _find(programs: tuple[str, ...]) -> Path | None:
    for program in programs:
        found = shutil.which(program) or shutil.which(program, path="/usr/bin:/usr/sbin")
        if found:
            return Path(found)
    return None


def find_chromium() -> Path | None:
    """The system browser, when both it and its driver are installed."""
    browser = _find(BROWSERS)
    return browser if browser is not None and _find((DRIVER,)) is not None else None


def ensure_chromium() -> Path:
    """The Chromium binary; apt-get installs Debian's chromium and chromium-driver first when
    either is missing (as root), else a StackError says what to install. Never a browser
    download of its own: the machines that test this may reach nothing but package mirrors."""
    found = find_chromium()
    if found is not None:
        return found
    apt_install("chromium", PACKAGES, "Chromium not found")
    found = find_chromium()
    if found is None:
        raise StackError(
            f"apt-get installed {' '.join(PACKAGES)} but no chromium and chromedriver on PATH"
        )
    return found
