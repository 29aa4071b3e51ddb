"""`python -m producer.macro [--once]`: FRED observations and series metadata to Kafka."""

from __future__ import annotations

import argparse
import functools
import sys

from producer.macro.parsing import SERVICE
from producer.macro.service import run
from shared.service import run_service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m producer.macro", description=__doc__)
    parser.add_argument("--once", action="store_true", help="poll every series once and exit")
    args = parser.parse_args(argv)
    return run_service(SERVICE, functools.partial(run, once=args.once))


if __name__ == "__main__":
    sys.exit(main())
