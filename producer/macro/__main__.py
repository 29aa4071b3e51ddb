"""`python -m producer.macro [--once]`: FRED observations and series metadata to Kafka."""

from __future__ import annotations

import sys

from producer.macro.parsing import SERVICE
from producer.macro.service import run
from shared.service import run_service, service_parser


def main(argv: list[str] | None = None) -> int:
    parser = service_parser(SERVICE)
    parser.add_argument("--once", action="store_true", help="poll every series once and exit")
    return run_service(SERVICE, run, argv, parser)


if __name__ == "__main__":
    sys.exit(main())
