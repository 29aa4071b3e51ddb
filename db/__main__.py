"""`python -m db migrate`: apply the pending migrations to POSTGRES_*."""

from __future__ import annotations

import argparse
import sys

import psycopg

from db.migrate import migrate
from shared.errors import PipelineError
from shared.service import configure_logging
from shared.settings import PostgresSettings, build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m db")
    parser.add_argument("command", choices=["migrate"])
    parser.parse_args(argv)
    configure_logging("db")
    try:
        settings = build(PostgresSettings)
        applied = migrate(settings.conninfo())
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"db: cannot reach {settings.describe()} (POSTGRES_*): {first}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        print(f"db: {exc}", file=sys.stderr)
        return 2
    print(
        f"db: {len(applied)} migration(s) applied" + (f": {', '.join(applied)}" if applied else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
