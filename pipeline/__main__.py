"""`python -m pipeline status`: one screen of the running pipeline (pipeline/status.py)."""

from __future__ import annotations

import sys

from pipeline.status import main as status_main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["status"]:
        print("usage: python -m pipeline status [--sample SECONDS] [--color auto|always|never]")
        return 2 if argv[:1] not in (["-h"], ["--help"]) else 0
    return status_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
