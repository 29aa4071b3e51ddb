"""`python -m analytics.alert_relay`: publish alert events from the outbox table."""

from __future__ import annotations

import sys

from analytics.alert_relay.service import SERVICE, run
from shared.service import run_service


def main(argv: list[str] | None = None) -> int:
    return run_service(SERVICE, run, argv)


if __name__ == "__main__":
    sys.exit(main())
