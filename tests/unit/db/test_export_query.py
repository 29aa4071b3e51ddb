"""The export's query and Arrow types (pure), and the role logins settings derive."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import SecretStr

from db.bootstrap import reader_url
from db.export import (
    Column,
    ExportError,
    ExportRequest,
    arrow_schema,
    build_query,
    conformed,
)
from shared.settings import PostgresSettings

COLUMNS = [
    Column("symbol", "text"),
    Column("interval", "text"),
    Column("ts", "timestamp with time zone"),
    Column("close", "double precision"),
    Column("volume", "bigint"),
    Column("value", "numeric"),
]


def request(**fields: object) -> ExportRequest:
    return ExportRequest(relation="price_bars", output=Path("x"), fmt="parquet", **fields)  # type: ignore[arg-type]


def test_filters_are_quoted_literals_and_order_is_symbol_interval_time() -> None:
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    query = build_query(
        request(symbols=("AAPL", "O'HARE%s"), interval="1d", start=start, end=end), COLUMNS
    )
    text = query.as_string()
    assert text == (
        'SELECT "symbol", "interval", "ts", "close", "volume", "value" FROM "price_bars" '
        "WHERE symbol = ANY('{AAPL,O''HARE%s}'::text[]) AND interval = '1d' "
        "AND \"ts\" >= '2024-01-01 00:00:00+00:00'::timestamptz "
        "AND \"ts\" < '2024-02-01 00:00:00+00:00'::timestamptz "
        'ORDER BY "symbol", "interval", "ts"'
    )
    plain = build_query(request(), COLUMNS)
    assert "WHERE" not in plain.as_string()


def test_as_text_selects_the_columns_without_an_arrow_type_as_their_text() -> None:
    query = build_query(request(), COLUMNS, as_text=True)
    # Binary COPY hands numeric (and json, bytea, …) over in PostgreSQL's own form: as text, the
    # file holds exactly what the database shows, never a rounded float.
    assert query.as_string().startswith(
        'SELECT "symbol"::text AS "symbol", "interval"::text AS "interval", "ts", "close", '
        '"volume", "value"::text AS "value" FROM'
    )


def test_a_filter_on_a_missing_column_is_refused() -> None:
    with pytest.raises(ExportError, match="has no column 'symbol'"):
        build_query(request(symbols=("AAPL",)), [Column("obs_date", "date")])
    with pytest.raises(ExportError, match="has no column 'ts'"):
        build_query(request(start=datetime(2024, 1, 1, tzinfo=UTC)), [Column("x", "text")])


def test_arrow_types_keep_precision() -> None:
    schema = arrow_schema(COLUMNS)
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("volume").type == pa.int64()
    assert schema.field("value").type == pa.string()  # numeric is never rounded to a float


def test_a_batch_takes_the_files_schema_or_is_refused() -> None:
    schema = pa.schema([pa.field("ts", pa.timestamp("us", tz="UTC")), pa.field("n", pa.string())])
    read = pa.RecordBatch.from_arrays(
        [pa.array([0], pa.timestamp("us", tz="UTC")), pa.array(["1.10"])],
        schema=pa.schema(
            [pa.field("ts", pa.timestamp("us", tz="UTC"), metadata={"POSTGRESQL:type": "x"}),
             pa.field("n", pa.string())]
        ),
    )  # fmt: skip
    assert conformed(read, schema).schema == schema  # the driver's field metadata is dropped
    as_float = pa.RecordBatch.from_arrays(
        [pa.array([0], pa.timestamp("us", tz="UTC")), pa.array([1.1])], names=["ts", "n"]
    )
    with pytest.raises(ExportError, match="column 'n' was read as double, not string"):
        conformed(as_float, schema)


def test_role_logins_and_the_masked_reader_url() -> None:
    settings = PostgresSettings(
        host="db.example", port=5433, dbname="md", reader_password=SecretStr("hunter2")
    )
    assert (settings.as_writer().user, settings.as_reader().user) == (
        "pipeline_writer",
        "pipeline_reader",
    )
    assert settings.as_reader().password.get_secret_value() == "hunter2"
    assert settings.as_writer().dbname == "md"
    assert reader_url(settings) == "postgresql://pipeline_reader:****@db.example:5433/md"


def test_error_lines_name_the_settings_of_the_login_in_use() -> None:
    settings = PostgresSettings()
    assert settings.login_names() == "POSTGRES_USER/POSTGRES_PASSWORD"
    assert settings.as_writer().login_names() == "POSTGRES_WRITER_USER/POSTGRES_WRITER_PASSWORD"
    assert settings.as_reader().login_names() == "POSTGRES_READER_USER/POSTGRES_READER_PASSWORD"
