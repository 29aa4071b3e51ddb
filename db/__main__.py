"""`python -m db migrate|bootstrap|export`: apply the pending migrations, create the writer and
reader roles and their grants (both as the owner POSTGRES_USER), or export a table or view to
Parquet or CSV (as the reader)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from db.bootstrap import bootstrap, reader_url
from db.migrate import migrate
from shared.errors import PipelineError
from shared.service import configure_logging
from shared.settings import PostgresSettings, RetentionSettings, build


def _utc(text: str) -> datetime:
    """An ISO date or time; without a zone it is UTC (as every time in the database)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m db", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the pending migrations (as POSTGRES_USER)")
    commands.add_parser("bootstrap", help="create/update pipeline_writer and pipeline_reader")
    export = commands.add_parser(
        "export",
        help="a table or view to Parquet or CSV, streamed (as POSTGRES_READER_USER)",
        description="Stream a table or view, optionally filtered by symbols, interval and a "
        "[--from, --to) time range, to Parquet (pyarrow, zstd) or CSV. Memory stays flat "
        "whatever the size; times are UTC.",
    )
    export.add_argument("relation", help="table or view, e.g. price_bars, bars_with_indicators")
    export.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    export.add_argument(
        "--format", choices=["parquet", "csv"], help="default: from the output's suffix"
    )
    export.add_argument("--symbols", default="", help="comma-separated, e.g. AAPL,MSFT")
    export.add_argument("--interval", help="e.g. 1d")
    export.add_argument("--from", dest="start", type=_utc, help="inclusive, e.g. 2024-01-01")
    export.add_argument("--to", dest="end", type=_utc, help="exclusive")
    export.add_argument("--time-column", default="ts", help="what --from/--to filter (ts)")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging("db")
    settings: PostgresSettings | None = None
    try:
        settings = build(PostgresSettings)
        if args.command == "export":
            return _export(args, settings.as_reader())
        if args.command == "bootstrap":
            report = bootstrap(settings)
            created = f" (created {', '.join(report.created)})" if report.created else ""
            print(
                f"db: roles {settings.writer_user} (services) and {settings.reader_user} "
                f"(read-only) ready on {report.database}{created}; read with "
                f"{reader_url(settings)}"
            )
            return 0
        applied = migrate(settings.conninfo(), retention=build(RetentionSettings))
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = settings.describe() if settings is not None else "PostgreSQL"
        print(f"db: cannot reach {where} (POSTGRES_*): {first}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        print(f"db: {exc}", file=sys.stderr)
        return 2
    print(
        f"db: {len(applied)} migration(s) applied" + (f": {', '.join(applied)}" if applied else "")
    )
    return 0


def _export(args: argparse.Namespace, reader: PostgresSettings) -> int:
    from tqdm import tqdm

    from db.export import ExportError, ExportRequest, export
    from db.prefetch import ReadError

    fmt = args.format or ("csv" if args.output.suffix.lower() == ".csv" else "parquet")
    request = ExportRequest(
        relation=args.relation,
        output=args.output,
        fmt=fmt,
        symbols=tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip()),
        interval=args.interval,
        start=args.start,
        end=args.end,
        time_column=args.time_column,
    )
    # disable=None: no bar when stderr is not a terminal (logs, CI) unless asked for.
    unit = ("B", True) if fmt == "csv" else ("rows", False)
    bar = tqdm(disable=True if args.quiet else None, unit=unit[0], unit_scale=True, file=sys.stderr)
    try:
        rows = export(
            reader.conninfo(),
            request,
            progress=bar.update,
            total=lambda n: setattr(bar, "total", n if fmt == "parquet" else None),
        )
    except ExportError as exc:
        print(f"db export: {exc}", file=sys.stderr)
        return 2
    except ReadError as exc:
        print(f"db export: cannot read {args.relation}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"db export: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    print(f"db export: {rows} rows of {args.relation} to {args.output} ({fmt})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
