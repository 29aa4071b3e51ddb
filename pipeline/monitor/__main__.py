"""`python -m pipeline.monitor`: record the pipeline's figures and keep its tables' partitions."""

from __future__ import annotations

import sys

from pipeline.monitor.service import SERVICE, run
from shared.service import run_service


def main(argv: list[str] | None = None) -> int:
    return run_service(SERVICE, run, argv)


if __name__ == "__main__":
    sys.exit(main())
