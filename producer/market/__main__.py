"""`python -m producer.market [--once]`: closed Yahoo bars to market.bars."""

from __future__ import annotations

import sys

from producer.market.parsing import SERVICE
from producer.market.service import run
from shared.service import run_service, service_parser


def main(argv: list[str] | None = None) -> int:
    parser = service_parser(SERVICE)
    parser.add_argument(
        "--once", action="store_true", help="backfill or poll every symbol once, flush, and exit"
    )
    return run_service(SERVICE, run, argv, parser)


if __name__ == "__main__":
    sys.exit(main())
