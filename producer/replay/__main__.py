"""`python -m producer.replay REPLAY_DIR`: list what the replay index finds in a folder."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path

from producer.replay.index import ReplayIndex


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m producer.replay", description=__doc__)
    parser.add_argument("replay_dir", type=Path, help="folder of recorded responses")
    args = parser.parse_args(argv)
    if not args.replay_dir.is_dir():
        print(f"producer.replay: {args.replay_dir} is not a directory", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    index = ReplayIndex.scan(args.replay_dir)
    columns = ("provider", "endpoint", "status", "key", "gran", "first", "last", "recorded", "file")
    rows = [
        (
            f.provider,
            f.endpoint
            + (" +prepost" if f.prepost else "")
            + (f" range={f.range_name}" if f.range_name else ""),
            str(f.status),
            f.key or "-",
            f.granularity or "-",
            _when(f.first),
            _when(f.last),
            _when(f.recorded_at),
            str(f.path.relative_to(args.replay_dir)),
        )
        for f in index.files
    ]
    widths = [
        max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)
    ]
    for row in (columns, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print(f"{len(index.files)} recorded responses indexed, {len(index.ignored)} files ignored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
