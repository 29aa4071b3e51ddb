"""`python -m db export`: a table or view, chosen symbols and a time range, to Parquet or CSV.

Rows leave PostgreSQL as one `COPY (SELECT …) TO STDOUT` in CSV, read in fixed-size blocks: CSV
output is those bytes as they come; Parquet output parses each block with pyarrow's CSV reader
(typed from the query's own column types) and writes it as a row group. Nothing holds more than
a block and one record batch, so memory stays flat however many rows there are, and the parsing
happens in C++ rather than row by row in Python. It reads as the reader role (db/bootstrap.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from db.copy_blocks import BlockStream, CopyBlocks

Format = Literal["parquet", "csv"]
# COPY hands over about this much per read; pyarrow parses blocks of BLOCK_BYTES.
BLOCK_BYTES = 8 << 20
RELATION_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid::regtype::text
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
ESTIMATE = "EXPLAIN (FORMAT JSON) "


class ExportError(ValueError):
    """A request that cannot be exported (unknown relation or column); one line for people."""


@dataclass(frozen=True)
class ExportRequest:
    relation: str
    output: Path
    fmt: Format
    symbols: tuple[str, ...] = ()
    interval: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    time_column: str = "ts"


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # regtype name: "double precision", "timestamp with time zone", …


def columns_of(conn: psycopg.Connection, relation: str) -> list[Column]:
    """The relation's columns (table or view of the search path); ExportError when unknown."""
    rows = conn.execute(RELATION_COLUMNS, (relation,)).fetchall()
    if not rows:
        raise ExportError(f"no table or view named {relation!r}")
    return [Column(name, regtype) for name, _formatted, regtype in rows]


def build_query(
    request: ExportRequest, columns: list[Column], *, utc_wall_time: bool = False
) -> tuple[sql.Composed, list[Any]]:
    """SELECT of every column with the request's filters as parameters, in (symbol, time) order
    when the relation has them. `utc_wall_time`: timestamptz as UTC wall time (which Arrow's CSV
    reader takes exactly; COPY's "+00" it does not)."""
    names = {c.name for c in columns}
    selected = []
    for column in columns:
        ident = sql.Identifier(column.name)
        if utc_wall_time and column.pg_type == "timestamp with time zone":
            selected.append(sql.SQL("({} AT TIME ZONE 'UTC') AS {}").format(ident, ident))
        else:
            selected.append(ident)
    where: list[sql.Composable] = []
    params: list[Any] = []

    def need(column: str, why: str) -> None:
        if column not in names:
            raise ExportError(f"{request.relation} has no column {column!r} ({why})")

    if request.symbols:
        need("symbol", "--symbols")
        where.append(sql.SQL("symbol = ANY(%s)"))
        params.append(list(request.symbols))
    if request.interval:
        need("interval", "--interval")
        where.append(sql.SQL("interval = %s"))
        params.append(request.interval)
    if request.start is not None or request.end is not None:
        need(request.time_column, "--from/--to")
        time = sql.Identifier(request.time_column)
        if request.start is not None:
            where.append(sql.SQL("{} >= %s").format(time))
            params.append(request.start)
        if request.end is not None:
            where.append(sql.SQL("{} < %s").format(time))
            params.append(request.end)
    order = [sql.Identifier(n) for n in ("symbol", "interval", request.time_column) if n in names]
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(selected), sql.Identifier(request.relation)
    )
    if where:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    if order:
        query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(order)
    return query, params


def estimated_rows(conn: psycopg.Connection, query: sql.Composed, params: list[Any]) -> int:
    """The planner's row estimate (for the progress bar: a count would read everything twice)."""
    (plan,) = conn.execute(sql.SQL(ESTIMATE) + query, params).fetchone()  # type: ignore[misc]
    return int(plan[0]["Plan"]["Plan Rows"])


def arrow_schema(columns: list[Column]) -> Any:
    """Arrow types for the CSV reader (what COPY prints) and for the file (what people get)."""
    import pyarrow as pa

    simple = {
        "double precision": pa.float64(),
        "real": pa.float32(),
        "bigint": pa.int64(),
        "integer": pa.int32(),
        "smallint": pa.int16(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp without time zone": pa.timestamp("us"),
        "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    }
    # numeric, text, json, bytea (as \x hex) and the rest stay text: nothing is rounded.
    return pa.schema([pa.field(c.name, simple.get(c.pg_type, pa.string())) for c in columns])


def export(
    conn: psycopg.Connection,
    request: ExportRequest,
    progress: Callable[[int], None] = lambda _rows: None,
    total: Callable[[int], None] = lambda _rows: None,
) -> int:
    """Write the request's rows to request.output; return how many. `progress(n)` is called
    after each block with the rows (Parquet) or bytes (CSV) it added; `total(n)` once with
    the planner's row estimate."""
    columns = columns_of(conn, request.relation)
    query, params = build_query(request, columns, utc_wall_time=request.fmt == "parquet")
    total(estimated_rows(conn, query, params))
    copy = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER false)").format(query)
    blocks = CopyBlocks(conn, copy, params, block_bytes=BLOCK_BYTES)
    try:
        if request.fmt == "csv":
            counted = _write_csv(blocks, columns, request.output, progress)
        else:
            counted = _write_parquet(blocks, columns, request.output, progress)
    finally:
        blocks.close()  # on a failure here, the COPY is cancelled before the caller goes on
    # COPY's command tag holds the exact count (a CSV's newlines may sit inside a text).
    return blocks.rowcount if blocks.rowcount >= 0 else counted


def _write_csv(
    data: CopyBlocks, columns: list[Column], output: Path, progress: Callable[[int], None]
) -> int:
    rows = 0
    with output.open("wb") as sink:
        sink.write(",".join(_csv_header(c.name) for c in columns).encode() + b"\n")
        for chunk in data:
            sink.write(chunk)
            # COPY quotes a field holding a newline, so only unquoted ones end a row; counting
            # every one is exact unless some text holds newlines (progress only).
            rows += bytes(chunk).count(b"\n")
            progress(len(chunk))
    return rows


def _csv_header(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if any(ch in name for ch in ',"\n') else name


def _write_parquet(
    data: CopyBlocks, columns: list[Column], output: Path, progress: Callable[[int], None]
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(columns)
    # Timestamps arrive as UTC wall time: read naive, label UTC (same microseconds).
    read_types = {
        f.name: pa.timestamp("us") if pa.types.is_timestamp(f.type) else f.type for f in schema
    }
    chunks = iter(data)
    first = next(chunks, None)
    reader = None
    if first is not None:
        reader = _csv_reader(itertools.chain([first], chunks), columns, read_types)
    rows = 0
    with pq.ParquetWriter(output, schema, compression="zstd") as writer:
        if reader is None:  # no rows: a file with the columns and no row group
            writer.write_table(schema.empty_table())
            return 0
        for batch in reader:
            table = pa.Table.from_batches([batch]).cast(schema)
            writer.write_table(table)
            rows += batch.num_rows
            progress(batch.num_rows)
    return rows


def _csv_reader(chunks: Iterator[bytes], columns: list[Column], types: dict[str, Any]) -> Any:
    import pyarrow.csv as pacsv

    return pacsv.open_csv(
        BlockStream(chunks),
        read_options=pacsv.ReadOptions(
            column_names=[c.name for c in columns], block_size=BLOCK_BYTES, use_threads=False
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            # COPY CSV: NULL is an empty unquoted field, an empty string is "".
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
