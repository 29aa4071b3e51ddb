"""Export benchmark: `python -m bench.export` (5 million bars to Parquet) or `--smoke` (the size
`make test` runs). Prints name=value: rows_per_s (rows / wall time of the `python -m db export`
process, its start-up included) and peak_rss_mb (that process's maximum resident set)."""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from psycopg import sql

from bench.harness import ROOT, emit
from db.bootstrap import bootstrap
from db.migrate import migrate
from shared.settings import PostgresSettings, build

FULL_ROWS = 5_000_000
SMOKE_ROWS = 50_000
SYMBOLS = 500
# Set-based fill on the server: one INSERT … SELECT, not rows sent from Python.
FILL = """
INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, adj_close, volume,
                        split_basis, source, event_id)
SELECT 'S' || lpad(s::text, 4, '0'), '1m',
       timestamptz '2024-01-02 14:30+00' + g * interval '1 minute',
       p, p + 0.05, p - 0.05, p + 0.01, NULL, 100 + g, 1, 'bench', s || '-' || g
FROM generate_series(0, %(symbols)s - 1) s,
     generate_series(0, %(per_symbol)s - 1) g,
     LATERAL (SELECT 50.0 + s * 0.1 + g * 0.001 AS p) price
"""


@contextmanager
def fresh_database() -> Iterator[PostgresSettings]:
    """A freshly migrated and bootstrapped database, dropped afterwards (no Kafka: an export
    reads only PostgreSQL)."""
    base = build(PostgresSettings)
    postgres = base.model_copy(update={"dbname": f"bench_export_{uuid.uuid4().hex[:8]}"})
    name = sql.Identifier(postgres.dbname)
    with psycopg.connect(base.conninfo(dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    try:
        migrate(postgres.conninfo())
        bootstrap(postgres)  # the export reads as pipeline_reader
        yield postgres
    finally:
        with psycopg.connect(base.conninfo(dbname="postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def emit_settings(postgres: PostgresSettings, **extra: object) -> None:
    """The server settings the figures were measured under (README "Benchmarks")."""
    with psycopg.connect(postgres.conninfo()) as conn:
        for setting in ("fsync", "synchronous_commit", "shared_buffers", "server_version"):
            query = sql.SQL("SHOW {}").format(sql.Identifier(setting))
            emit(f"pg_{setting}", conn.execute(query).fetchone()[0])  # type: ignore[index]
    for name, value in extra.items():
        emit(name, value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_ROWS} rows, not {FULL_ROWS}")
    parser.add_argument("--rows", type=int, help="another size (a multiple of 500)")
    args = parser.parse_args(argv)
    rows = args.rows or (SMOKE_ROWS if args.smoke else FULL_ROWS)
    per_symbol = rows // SYMBOLS
    with fresh_database() as postgres:
        filled = time.monotonic()
        with psycopg.connect(postgres.conninfo()) as conn:
            conn.execute(FILL, {"symbols": SYMBOLS, "per_symbol": per_symbol})
            conn.execute("ANALYZE price_bars")
        emit_settings(postgres, rows=SYMBOLS * per_symbol, symbols=SYMBOLS, output="parquet")
        emit("fill_s", time.monotonic() - filled)
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "bars.parquet"
            env = {**os.environ, "POSTGRES_DBNAME": postgres.dbname}
            command = [sys.executable, "-m", "db", "export", "price_bars", "-o", str(out)]
            started = time.monotonic()
            subprocess.run([*command, "--quiet"], cwd=ROOT, env=env, check=True)
            elapsed = time.monotonic() - started
            # ru_maxrss of waited-for children, in KiB on Linux: the export is the only one.
            peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            written = pq.ParquetFile(out).metadata.num_rows
            emit("file_mb", out.stat().st_size / 2**20)
        if written != SYMBOLS * per_symbol:
            raise SystemExit(f"bench.export: the file holds {written} rows, expected {rows}")
        emit("rows_per_s", written / elapsed)
        emit("peak_rss_mb", peak_kib / 1024)
        emit("export_s", elapsed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
