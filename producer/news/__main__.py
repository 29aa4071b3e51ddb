"""`python -m producer.news [--once]`: Finnhub company and market news to news.articles."""

from __future__ import annotations

import sys

from producer.news.parsing import SERVICE
from producer.news.service import run
from shared.service import run_service, service_parser


def main(argv: list[str] | None = None) -> int:
    parser = service_parser(SERVICE)
    parser.add_argument("--once", action="store_true", help="poll every symbol once and exit")
    return run_service(SERVICE, run, argv, parser)


if __name__ == "__main__":
    sys.exit(main())
