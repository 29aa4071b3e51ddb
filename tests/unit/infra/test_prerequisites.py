"""The local stack says what to install when Java or Maven is missing (no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.kafka_broker import JAVA_HINT, start_kafka
from infra.profiles import get_profile
from shared.errors import StackError
from shared.settings import StackSettings
from tests.conftest import REPO_ROOT


def test_missing_java_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it: no java, no mvn
    profile = get_profile("test", StackSettings(local_stack_dir=tmp_path / "stack"))
    with pytest.raises(StackError, match="`java` is not installed; install it: apt-get install"):
        start_kafka(profile)


def test_missing_maven_when_jars_must_be_fetched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to("/bin/true")  # a stand-in found on PATH; never run
    monkeypatch.setenv("PATH", str(bin_dir))
    profile = get_profile("test", StackSettings(local_stack_dir=tmp_path / "stack"))
    with pytest.raises(StackError, match="`mvn` is not installed; install it: apt-get install"):
        start_kafka(profile)


def test_stack_cli_prints_one_line_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra.stack", "up", "--profile", "test"],
        cwd=REPO_ROOT,
        env={
            "PATH": str(tmp_path),
            "LOCAL_STACK_DIR": str(tmp_path / "stack"),
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:29092",
            "POSTGRES_PORT": "25432",
            "HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: `java` is not installed; install it: {JAVA_HINT}"
    ]
