"""`python -m consumer.storage`: persist market bars and dead letters to PostgreSQL."""

from __future__ import annotations

import sys

from consumer.storage.service import SERVICE, run
from shared.service import run_service


def main(argv: list[str] | None = None) -> int:
    return run_service(SERVICE, run, argv)


if __name__ == "__main__":
    sys.exit(main())
