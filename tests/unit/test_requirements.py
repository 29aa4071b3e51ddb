"""requirements.txt is the runtime (the Docker image), requirements-dev.txt adds the tooling.

Every third-party module the pipeline's own code imports must come from a package pinned in
requirements.txt, the only file the image installs; test, lint and benchmark tools must not.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# The product: what runs in the image. tests/ and bench/ run in the dev venv only.
PRODUCT = [
    "producer",
    "consumer",
    "analytics",
    "ml",
    "shared",
    "db",
    "infra",
    "pipeline_supervisor",
    "start_pipeline.py",
]
# Tools that must never be in the image, whatever requirements-dev.txt says.
DEV_ONLY = {
    "pytest",
    "pytest-timeout",
    "ruff",
    "hypothesis",
    "ta-lib",
    "talipp",
    "testcontainers",
    "pyinstrument",
    "pyyaml",
}
RUNTIME = REPO_ROOT / "requirements.txt"
DEV = REPO_ROOT / "requirements-dev.txt"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares it (TA-Lib is ta-lib, a_b is a-b)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements file, comments and blank lines dropped."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def pinned(path: Path) -> dict[str, str]:
    """Normalized package name -> its requirement line, for the file's own lines (no `-r`)."""
    found = {}
    for line in requirement_lines(path):
        if line.startswith("-"):
            continue
        name = NAME.match(line)
        assert name, f"{path.name}: cannot read {line!r}"
        found[normalized(name.group())] = line
    return found


def first_party() -> set[str]:
    """Top-level modules of this repository (packages and root .py files)."""
    return {
        child.stem if child.suffix == ".py" else child.name
        for child in REPO_ROOT.iterdir()
        if (child.suffix == ".py" and child.is_file())
        or (child.is_dir() and any(child.glob("*.py")))
    }


def top_level_imports(roots: list[str]) -> dict[str, str]:
    """Every absolute import's top-level module under `roots` -> one file importing it."""
    found: dict[str, str] = {}
    for root in roots:
        path = REPO_ROOT / root
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(file.relative_to(REPO_ROOT)))
    return found


@cache
def distributions_of() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def third_party(roots: list[str]) -> dict[str, str]:
    ours = first_party()
    return {
        module: where
        for module, where in top_level_imports(roots).items()
        if module not in sys.stdlib_module_names and module not in ours
    }


def unsatisfied(roots: list[str], allowed: set[str]) -> list[str]:
    """Imports under `roots` whose distribution is not among `allowed` (normalized names)."""
    problems = []
    for module, where in sorted(third_party(roots).items()):
        dists = distributions_of().get(module)
        if not dists:
            problems.append(f"{module} ({where}): no installed distribution provides it")
        elif not {normalized(dist) for dist in dists} & allowed:
            problems.append(f"{module} ({where}): from {', '.join(dists)}, not in the requirements")
    return problems


def test_the_product_imports_third_party_modules() -> None:
    # The scan sees the product: a wrong root would make the next test pass vacuously.
    assert {"confluent_kafka", "psycopg", "pydantic_settings"} <= set(third_party(PRODUCT))


def test_every_product_import_comes_from_requirements_txt() -> None:
    assert unsatisfied(PRODUCT, set(pinned(RUNTIME))) == []


def test_tests_and_benchmarks_are_satisfied_by_the_dev_requirements() -> None:
    assert unsatisfied(["tests", "bench"], set(pinned(RUNTIME)) | set(pinned(DEV))) == []


@pytest.mark.parametrize("path", [RUNTIME, DEV], ids=lambda path: path.name)
def test_every_requirement_is_pinned(path: Path) -> None:
    assert [line for line in pinned(path).values() if "==" not in line] == []


def test_no_dev_only_package_is_a_runtime_requirement() -> None:
    runtime = set(pinned(RUNTIME))
    assert runtime & DEV_ONLY == set()
    assert runtime & set(pinned(DEV)) == set()  # each pin lives in one file
    assert DEV_ONLY <= set(pinned(DEV)), "a dev-only tool is missing from requirements-dev.txt"


def test_dev_requirements_include_the_runtime_ones() -> None:
    assert "-r requirements.txt" in requirement_lines(DEV)


def test_the_installed_versions_are_the_pinned_ones() -> None:
    # `make setup` installs requirements-dev.txt: the venv the tests run in is what is pinned.
    wrong = []
    for name, line in {**pinned(RUNTIME), **pinned(DEV)}.items():
        want = line.split("==", 1)[1].strip()
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = None
        if have != want:
            wrong.append(f"{name}: pinned {want}, installed {have}")
    assert wrong == []
