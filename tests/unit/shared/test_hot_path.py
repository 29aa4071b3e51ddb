"""The compiled hot path (shared/hot_path.py): compiled where `make setup` ran, refused when a
source changed since, and the same results as the sources interpreted, bit for bit."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared import hot_path
from tests.conftest import REPO_ROOT

# Long and split twice (TSLA), intraday (AAPL), split mid-series (NVDA): recorded responses.
CHARTS = (
    "chart_TSLA_1d_2010-06-29_2023-08-11.json",
    "chart_AAPL_1m_2024-10-02.json",
    "chart_NVDA_1d_2021-02-01_2022-01-28_split4for1.json",
)
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def test_make_setup_compiled_every_module_of_the_hot_path() -> None:
    # `make test` runs `make setup` first: the suite tests the code the services run.
    interpreted = [
        name for name in hot_path.MODULES if not hot_path.is_compiled(importlib.import_module(name))
    ]
    assert interpreted == [], "not compiled: run `make setup`"


def probe(mode: str, recordings: Path) -> str:
    charts = [str(recordings / "yahoo" / name) for name in CHARTS]
    done = subprocess.run(
        [sys.executable, "-m", "tests.unit.shared.hot_path_probe", mode, *charts],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_compiled_and_interpreted_compute_the_same_bits(recordings: Path) -> None:
    compiled = probe("compiled", recordings)
    interpreted = probe("interpreted", recordings)
    kinds = [line.split(" ", 1)[0] for line in compiled.splitlines()]
    # What was compared: indicator rows past the warm-up, alerts, states, rejections.
    assert kinds.count("row") > 3_000
    assert kinds.count("alert") > 100
    assert kinds.count("state") > 50
    assert kinds.count("rejected") >= 20
    assert compiled == interpreted


def fake_build(root: Path, modules: tuple[str, ...]) -> None:
    """A tree as `make setup` leaves it: sources, their extension modules, the group's library
    and the manifest (the .so files are empty: only their presence is read)."""
    for module in modules:
        source = hot_path.source(module, root)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"# {module}\n")
        source.with_suffix(SUFFIX).write_bytes(b"")
    (root / f"{hot_path.GROUP}__mypyc{SUFFIX}").write_bytes(b"")
    (root / hot_path.MANIFEST).parent.mkdir(parents=True)
    (root / hot_path.MANIFEST).write_text(json.dumps(hot_path.manifest(modules, root)))


MODULES = ("pkg.one", "pkg.two")


def test_a_build_of_the_current_sources_is_accepted(tmp_path: Path) -> None:
    fake_build(tmp_path, MODULES)
    assert hot_path.stale(MODULES, tmp_path) == []
    hot_path.ensure_current(MODULES, tmp_path)


def test_a_source_edited_since_the_build_is_refused_in_one_line(tmp_path: Path) -> None:
    fake_build(tmp_path, MODULES)
    with hot_path.source("pkg.two", tmp_path).open("a") as source:
        source.write("x = 1\n")
    assert hot_path.stale(MODULES, tmp_path) == ["pkg.two"]
    with pytest.raises(hot_path.StaleBuildError) as raised:
        hot_path.ensure_current(MODULES, tmp_path)
    message = str(raised.value)
    assert message.startswith("pkg/two.py changed since it was compiled")
    assert "`make setup`" in message and "\n" not in message


@pytest.mark.parametrize("lost", ["manifest", "group library"])
def test_a_build_missing_a_part_is_refused(tmp_path: Path, lost: str) -> None:
    fake_build(tmp_path, MODULES)
    if lost == "manifest":
        (tmp_path / hot_path.MANIFEST).unlink()
    else:
        (tmp_path / f"{hot_path.GROUP}__mypyc{SUFFIX}").unlink()
    assert hot_path.stale(MODULES, tmp_path) == list(MODULES)


def test_sources_never_compiled_run_interpreted(tmp_path: Path) -> None:
    fake_build(tmp_path, MODULES)
    for module in MODULES:
        hot_path.source(module, tmp_path).with_suffix(SUFFIX).unlink()
    assert hot_path.stale(MODULES, tmp_path) == []


def test_a_process_started_on_a_stale_build_stops_with_one_line(tmp_path: Path) -> None:
    # A tree holding `shared` with shared/validation compiled from another source.
    package = tmp_path / "shared"
    package.mkdir()
    for name in ("__init__.py", "hot_path.py"):
        (package / name).write_text((REPO_ROOT / "shared" / name).read_text())
    (package / "validation.py").write_text("# edited since the build\n")
    (package / f"validation{SUFFIX}").write_bytes(b"")
    (tmp_path / f"{hot_path.GROUP}__mypyc{SUFFIX}").write_bytes(b"")
    (tmp_path / hot_path.MANIFEST).parent.mkdir(parents=True)
    (tmp_path / hot_path.MANIFEST).write_text(json.dumps({"shared.validation": "0" * 64}))
    done = subprocess.run(
        [sys.executable, "-c", "import shared"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "shared/validation.py changed since it was compiled: run `make setup` to compile it "
        "again, or `make interpreted` to run it uncompiled"
    ]
