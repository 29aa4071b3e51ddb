"""The hot path: the modules `make setup` compiles to C with mypyc, and the check that what is
compiled is what their sources say.

Why: most of the analytics consumer's CPU per bar is these modules' arithmetic and attribute
reads (the indicators, a series' state, the alert engine, a bar's validation). Compiled, the
same code costs about a third less CPU a bar (bench.analytics: 19.05 → 12.9 µs). The sources
stay the one definition: compiled or interpreted, they give the same results bit for bit
(tests/unit/shared/test_hot_path.py), and the C is built without contracting a*b+c into one
rounding (infra/hot_path.py).

A compiled module sits beside its source as NAME.<suffix>.so, which Python imports in
preference to NAME.py: a source edited since the build would silently not run. The build
records each source's sha256 (MANIFEST); `ensure_current`, run when `shared` is first imported,
refuses such a tree with one line saying what to run.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

MODULES = (
    "analytics.indicators.rolling",
    "analytics.indicators.sma",
    "analytics.indicators.ema",
    "analytics.indicators.rsi",
    "analytics.indicators.macd",
    "analytics.indicators.bollinger",
    "analytics.indicators.volatility",
    "analytics.indicators.indicator_set",
    "analytics.series",
    "analytics.alerts.engine",
    "shared.validation",
)
ROOT = Path(__file__).resolve().parent.parent
# mypyc's shared library of the group (its runtime and the modules' code), at the root.
GROUP = "hot_path"
BUILD_DIR = Path("build") / GROUP  # relative to the root: C sources, objects, the manifest
MANIFEST = BUILD_DIR / "manifest.json"
REBUILD = "run `make setup` to compile it again, or `make interpreted` to run it uncompiled"


class StaleBuildError(ImportError):
    """A compiled module no longer matches its source."""


def source(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def compiled_files(module: str, root: Path = ROOT) -> list[Path]:
    """The extension modules Python would import for `module` (normally none or one)."""
    path = source(module, root)
    stem = path.with_suffix("")
    return [
        Path(f"{stem}{suffix}")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if Path(f"{stem}{suffix}").exists()
    ]


def group_files(root: Path = ROOT) -> list[Path]:
    return sorted(root.glob(f"{GROUP}__mypyc.*"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(modules: Sequence[str] = MODULES, root: Path = ROOT) -> dict[str, str]:
    """What the build records: each source's sha256."""
    return {module: digest(source(module, root)) for module in modules}


def stale(modules: Sequence[str] = MODULES, root: Path = ROOT) -> list[str]:
    """The modules compiled from a source other than the one beside them now (every compiled
    one when the manifest or the group's library is missing)."""
    compiled = [module for module in modules if compiled_files(module, root)]
    if not compiled:
        return []
    if not group_files(root):  # their code lives there
        return compiled
    try:
        built = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return compiled
    return [module for module in compiled if built.get(module) != digest(source(module, root))]


def ensure_current(modules: Sequence[str] = MODULES, root: Path = ROOT) -> None:
    """Raise StaleBuildError naming the first compiled module whose source changed since."""
    changed = stale(modules, root)
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise StaleBuildError(
            f"{source(changed[0], root).relative_to(root)}{more} changed since it was compiled: "
            f"{REBUILD}"
        )


def state(root: Path = ROOT) -> str:
    """`compiled`, `interpreted` or `partly compiled`, from the files (nothing is imported)."""
    count = sum(1 for module in MODULES if compiled_files(module, root))
    if count == len(MODULES):
        return "compiled"
    return "interpreted" if count == 0 else "partly compiled"


def is_compiled(module: ModuleType) -> bool:
    return not str(getattr(module, "__file__", "")).endswith(".py")


class _FromSource(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source(fullname))


def interpreted() -> None:
    """From now on, import the hot path's modules from their sources even where they are
    compiled (a process that has imported none of them yet): the comparison test's other side,
    and a way to profile the sources line by line."""
    loaded = [module for module in MODULES if module in sys.modules]
    if loaded:
        raise RuntimeError(f"{loaded[0]} is already imported")
    sys.meta_path.insert(0, _FromSource())
