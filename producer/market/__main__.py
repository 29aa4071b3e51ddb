"""`python -m producer.market [--once]`: closed Yahoo bars to market.bars.

`python -m producer.market backfill --days N` extends each series' history backwards and runs
the indicator recompute (producer/market/backfill.py).
"""

from __future__ import annotations

import sys

from producer.market import backfill
from producer.market.parsing import SERVICE
from producer.market.service import run
from shared.service import run_service, service_parser


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["backfill"]:
        # A one-shot command beside a running producer: no health server (its port is taken).
        return backfill.main(args[1:])
    parser = service_parser(SERVICE)
    parser.add_argument(
        "--once", action="store_true", help="backfill or poll every symbol once, flush, and exit"
    )
    parser.epilog = (parser.epilog or "") + (
        " `backfill --days N` extends each series' history backwards, then recomputes its"
        " indicators (`backfill --help`)."
    )
    return run_service(SERVICE, run, args, parser)


if __name__ == "__main__":
    sys.exit(main())
