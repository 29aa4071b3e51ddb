"""`python -m db export`: a table or view, chosen symbols and a time range, to Parquet or CSV.

Parquet: the rows leave PostgreSQL as `COPY (SELECT …) TO STDOUT (FORMAT binary)`, decoded into
Arrow record batches by the ADBC PostgreSQL driver (db/arrow_batches.py); each batch is one row
group. Columns without an exact Arrow type (numeric, json, bytea, enums, arrays, …) are selected as
their text, so nothing is rounded or left in PostgreSQL's own binary form. CSV: one `COPY (SELECT …)
TO STDOUT` in CSV, whose bytes are the file. Either way nothing holds more than a few batches or
blocks, so memory stays flat however many rows there are, and a COPY not read to its end is
cancelled. It reads as the reader role (db/bootstrap.py), from the connection string it is given.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from db.arrow_batches import ArrowBatches
from db.copy_blocks import CopyBlocks

Format = Literal["parquet", "csv"]
# A CSV COPY hands over about this much per write.
BLOCK_BYTES = 8 << 20
# PostgreSQL types (regtype names) with an exact Arrow type, read in binary; the rest go as text.
ARROW_TYPES = {
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
RELATION_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid::regtype::text
FROM pg_attribute a
WHERE a.attrelid = to_regclass(quote_ident(%s)) AND a.attnum > 0 AND NOT a.attisdropped
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
    request: ExportRequest, columns: list[Column], *, as_text: bool = False
) -> sql.Composed:
    """SELECT of every column with the request's filters, in (symbol, time) order when the
    relation has them. `as_text`: the columns without an Arrow type of their own (ARROW_TYPES)
    as their text output, which is what the file holds for them.

    The filter values are literals quoted by psycopg (sql.Literal), not `%s` parameters: the ADBC
    driver's COPY takes none, and with parameters psycopg would read a `%` in a table or column
    name as a placeholder."""
    names = {c.name for c in columns}
    selected = []
    for column in columns:
        ident = sql.Identifier(column.name)
        if as_text and column.pg_type not in ARROW_TYPES:
            selected.append(sql.SQL("{}::text AS {}").format(ident, ident))
        else:
            selected.append(ident)
    where: list[sql.Composable] = []

    def need(column: str, why: str) -> None:
        if column not in names:
            raise ExportError(f"{request.relation} has no column {column!r} ({why})")

    if request.symbols:
        need("symbol", "--symbols")
        where.append(sql.SQL("symbol = ANY({}::text[])").format(sql.Literal(list(request.symbols))))
    if request.interval:
        need("interval", "--interval")
        where.append(sql.SQL("interval = {}").format(sql.Literal(request.interval)))
    if request.start is not None or request.end is not None:
        need(request.time_column, "--from/--to")
        time = sql.Identifier(request.time_column)
        if request.start is not None:
            where.append(sql.SQL("{} >= {}").format(time, sql.Literal(request.start)))
        if request.end is not None:
            where.append(sql.SQL("{} < {}").format(time, sql.Literal(request.end)))
    order = [sql.Identifier(n) for n in ("symbol", "interval", request.time_column) if n in names]
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(selected), sql.Identifier(request.relation)
    )
    if where:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    if order:
        query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(order)
    return query


def estimated_rows(conn: psycopg.Connection, query: sql.Composed) -> int:
    """The planner's row estimate (for the progress bar: a count would read everything twice)."""
    (plan,) = conn.execute(sql.SQL(ESTIMATE) + query).fetchone()  # type: ignore[misc]
    return int(plan[0]["Plan"]["Plan Rows"])


def arrow_schema(columns: list[Column]) -> pa.Schema:
    """The file's Arrow types: ARROW_TYPES, and text for the rest (numeric, json, bytea as \\x
    hex, …): nothing is rounded."""
    return pa.schema([pa.field(c.name, ARROW_TYPES.get(c.pg_type, pa.string())) for c in columns])


def export(
    conninfo: str,
    request: ExportRequest,
    progress: Callable[[int], None] = lambda _rows: None,
    total: Callable[[int], None] = lambda _rows: None,
) -> int:
    """Write the request's rows to request.output, read with the libpq `conninfo`; return how
    many. `progress(n)` is called after each batch with the rows (Parquet) or bytes (CSV) it
    added; `total(n)` once with the planner's row estimate."""
    with psycopg.connect(conninfo) as conn:
        columns = columns_of(conn, request.relation)
        query = build_query(request, columns, as_text=request.fmt == "parquet")
        total(estimated_rows(conn, query))
        if request.fmt == "csv":
            return _export_csv(conn, query, columns, request.output, progress)
        text = query.as_string(conn)
    batches = ArrowBatches(conninfo, text)
    try:
        return _write_parquet(batches, arrow_schema(columns), request.output, progress)
    finally:
        batches.close()  # on a failure here, the COPY is cancelled before the caller goes on


def _export_csv(
    conn: psycopg.Connection,
    query: sql.Composed,
    columns: list[Column],
    output: Path,
    progress: Callable[[int], None],
) -> int:
    copy = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER false)").format(query)
    blocks = CopyBlocks(conn, copy, block_bytes=BLOCK_BYTES)
    try:
        counted = _write_csv(blocks, columns, output, progress)
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
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    output: Path,
    progress: Callable[[int], None],
) -> int:
    # The first batch before the file: a query that fails leaves no empty file behind.
    read = iter(batches)
    first = next(read, None)
    rows = 0
    with pq.ParquetWriter(output, schema, compression="zstd") as writer:
        if first is None:  # no rows: a file with the columns and no row group
            writer.write_table(schema.empty_table())
            return 0
        for batch in itertools.chain([first], read):
            writer.write_batch(conformed(batch, schema))
            rows += batch.num_rows
            progress(batch.num_rows)
    return rows


def conformed(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` labelled with the file's schema (names, no driver metadata), refused when the
    driver read a column as another type than the file promises."""
    for got, want in zip(batch.schema, schema, strict=True):
        if got.type != want.type:
            raise ExportError(f"column {want.name!r} was read as {got.type}, not {want.type}")
    return pa.RecordBatch.from_arrays(batch.columns, schema=schema)
