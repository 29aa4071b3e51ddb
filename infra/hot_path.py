"""Compile the hot path (shared/hot_path.py) with mypyc: `python -m infra.hot_path build|clean`.

`build` does nothing when every module is compiled from its current source; otherwise it removes
the old build, compiles the modules beside their sources (C compiler: gcc, installed with
apt-get when missing, as root) and records the sources' sha256. `clean` removes the compiled
modules: the same sources then run interpreted (`make interpreted`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import time
from pathlib import Path
from types import ModuleType

# Floating point: C compilers may fuse a*b+c into one instruction with one rounding (GCC does
# by default wherever the CPU has FMA, arm64 among them); CPython rounds each operation, and so
# must the compiled code to give the same results bit for bit.
EXACT_FLOAT_FLAGS = "-ffp-contract=off"
COMPILER_PACKAGES = ("gcc", "libc6-dev")


def _hot_path() -> ModuleType:
    # Loaded from its file: importing the package `shared` refuses a stale build, which is
    # what this script is here to replace (find_spec of a top-level package imports nothing).
    package = importlib.util.find_spec("shared")
    if package is None or not package.submodule_search_locations:
        raise SystemExit("cannot find the package `shared`")
    path = Path(package.submodule_search_locations[0]) / "hot_path.py"
    spec = importlib.util.spec_from_file_location("_hot_path_build", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean(hot_path: ModuleType) -> int:
    removed = 0
    for module in hot_path.MODULES:
        for path in hot_path.compiled_files(module):
            path.unlink()
            removed += 1
    for path in hot_path.group_files():
        path.unlink()
        removed += 1
    shutil.rmtree(hot_path.ROOT / hot_path.BUILD_DIR, ignore_errors=True)
    return removed


def _ensure_compiler() -> None:
    from infra.host import apt_install
    from shared.errors import StackError

    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.exists():
        raise StackError(f"{include} is missing: install this Python's headers (python3-dev)")
    if not shutil.which(os.environ.get("CC", "gcc")):
        apt_install("hot path", COMPILER_PACKAGES, "no C compiler to build the hot path")


def build(hot_path: ModuleType) -> None:
    """Compile every module into a tree cleaned beforehand."""
    root: Path = hot_path.ROOT
    _ensure_compiler()
    from mypyc.build import mypycify
    from setuptools import setup

    started = time.monotonic()
    print(f"[setup] compiling the hot path ({len(hot_path.MODULES)} modules, mypyc)…", flush=True)
    build_dir = root / hot_path.BUILD_DIR
    os.environ["CFLAGS"] = f"{os.environ.get('CFLAGS', '')} {EXACT_FLOAT_FLAGS}".strip()
    cwd = Path.cwd()
    os.chdir(root)  # mypyc names modules by their paths from here
    try:
        extensions = mypycify(
            [
                # Types of third-party modules do not matter here: only these are compiled.
                "--ignore-missing-imports",
                "--follow-imports=silent",
                f"--cache-dir={hot_path.BUILD_DIR / 'mypy_cache'}",
                *(str(hot_path.source(module).relative_to(root)) for module in hot_path.MODULES),
            ],
            opt_level="3",
            group_name=hot_path.GROUP,
            target_dir=str(build_dir / "c"),
        )
        setup(
            name=hot_path.GROUP,
            packages=[],
            py_modules=[],
            ext_modules=extensions,
            script_args=[
                "--quiet",
                "build_ext",
                "--inplace",
                f"--build-temp={build_dir / 'temp'}",
                f"--build-lib={build_dir / 'lib'}",
            ],
        )
    finally:
        os.chdir(cwd)
    (root / hot_path.MANIFEST).write_text(json.dumps(hot_path.manifest(), indent=1) + "\n")
    print(f"[setup] hot path compiled in {time.monotonic() - started:.0f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in (["build"], ["clean"]):
        print("usage: python -m infra.hot_path build|clean", file=sys.stderr)
        return 2
    hot_path = _hot_path()
    if args == ["clean"]:
        print(f"[setup] hot path: {clean(hot_path)} compiled file(s) removed", flush=True)
        return 0
    if hot_path.state() == "compiled" and not hot_path.stale():
        print("[setup] hot path compiled, sources unchanged", flush=True)
        return 0
    clean(hot_path)
    # Importable now: nothing compiled is left for `shared` to refuse.
    from shared.errors import StackError

    try:
        build(hot_path)
    except StackError as exc:
        print(f"[setup] {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
