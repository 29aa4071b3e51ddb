"""`python -m analytics.dashboard`: the live dashboard on DASHBOARD_PORT."""

from __future__ import annotations

import sys

from analytics.dashboard.service import SERVICE, run
from shared.service import run_service


def main(argv: list[str] | None = None) -> int:
    return run_service(SERVICE, run, argv)


if __name__ == "__main__":
    sys.exit(main())
