"""`python -m producer.news [--once]`: Finnhub company and market news to news.articles."""

from __future__ import annotations

import argparse
import functools
import sys

from producer.news.parsing import SERVICE
from producer.news.service import run
from shared.service import run_service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m producer.news", description=__doc__)
    parser.add_argument("--once", action="store_true", help="poll every symbol once and exit")
    args = parser.parse_args(argv)
    return run_service(SERVICE, functools.partial(run, once=args.once))


if __name__ == "__main__":
    sys.exit(main())
