"""`python -m producer.market [--once]`: closed Yahoo bars to market.bars."""

from __future__ import annotations

import argparse
import functools
import sys

from producer.market.parsing import SERVICE
from producer.market.service import run
from shared.service import run_service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m producer.market", description=__doc__)
    parser.add_argument(
        "--once", action="store_true", help="backfill or poll every symbol once, flush, and exit"
    )
    args = parser.parse_args(argv)
    return run_service(SERVICE, functools.partial(run, once=args.once))


if __name__ == "__main__":
    sys.exit(main())
