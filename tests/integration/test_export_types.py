"""`python -m db export` keeps every value exactly, whatever its type, on real PostgreSQL: Parquet
reads binary COPY through the ADBC driver (db/arrow_batches.py), CSV is COPY's own text; leaving
a Parquet export early cancels its COPY."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from db.__main__ import main as db_main
from db.arrow_batches import ArrowBatches
from shared.settings import PostgresSettings

# A server zone far from UTC (with a 45-minute offset): the file's times must not depend on it.
SERVER_ZONE = "Asia/Kathmandu"
TYPES = """
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE TABLE export_types (
    symbol text, ts timestamptz, amount numeric, price double precision, ratio real,
    small smallint, medium integer, big bigint, flag boolean, day date, local timestamp,
    note text, raw bytea, doc json, docb jsonb, state mood, counts integer[], span interval
);
INSERT INTO export_types VALUES
  ('AAA', '2024-03-10 07:00:00.123456+00', 12345678901234567890.123456789012345678,
   0.30000000000000004, 0.1, 32767, -2147483648, -9223372036854775808, true, '2024-02-29',
   '2024-03-10 07:00:00.654321', '', '\\x00ff', '{"a": 1.10}', '{"b": [1, 2.50]}', 'busy',
   '{1,NULL,3}', '1 day 02:00:00'),
  ('AAA', '1969-12-31 23:59:59.999999+00', -0.000000000000000000001, 1e308, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  ('BBB', '2024-03-11 00:00:00+00', 'NaN', -0.0, NULL, NULL, NULL, NULL, false, NULL, NULL,
   E'comma, "quote"\\nnew line, Zürich ✓', NULL, NULL, NULL, 'calm', '{}', NULL);
"""
EMPTY = {
    "ratio": None, "small": None, "medium": None, "big": None, "flag": None, "day": None,
    "local": None, "note": None, "raw": None, "doc": None, "docb": None, "state": None,
    "counts": None, "span": None,
}  # fmt: skip
# In (symbol, ts) order; numeric, bytea, json, enums, arrays and intervals as PostgreSQL's text.
EXPECTED = [
    {
        "symbol": "AAA",
        "ts": datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "amount": "-0.000000000000000000001",
        "price": 1e308,
        **EMPTY,
    },
    {
        "symbol": "AAA",
        "ts": datetime(2024, 3, 10, 7, 0, 0, 123456, tzinfo=UTC),
        "amount": "12345678901234567890.123456789012345678",
        "price": 0.30000000000000004,
        "ratio": pa.scalar(0.1, pa.float32()).as_py(),
        "small": 32767,
        "medium": -2147483648,
        "big": -9223372036854775808,
        "flag": True,
        "day": date(2024, 2, 29),
        "local": datetime(2024, 3, 10, 7, 0, 0, 654321),
        "note": "",  # an empty text, not NULL
        "raw": "\\x00ff",
        "doc": '{"a": 1.10}',
        "docb": '{"b": [1, 2.50]}',
        "state": "busy",
        "counts": "{1,NULL,3}",
        "span": "1 day 02:00:00",
    },
    {
        **EMPTY,
        "symbol": "BBB",
        "ts": datetime(2024, 3, 11, tzinfo=UTC),
        "amount": "NaN",
        "price": -0.0,
        "flag": False,
        "note": 'comma, "quote"\nnew line, Zürich ✓',
        "state": "calm",
        "counts": "{}",
    },
]


@pytest.fixture
def typed(pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch) -> PostgresSettings:
    monkeypatch.setenv("POSTGRES_DBNAME", pg_settings.dbname)
    with psycopg.connect(pg_settings.conninfo(), autocommit=True) as conn:
        conn.execute(TYPES)
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET timezone TO {}").format(
                sql.Identifier(pg_settings.dbname), sql.Literal(SERVER_ZONE)
            )
        )
    return pg_settings


def test_parquet_keeps_every_type_exactly_and_nulls_apart_from_empty_texts(
    typed: PostgresSettings, tmp_path: Path
) -> None:
    out = tmp_path / "types.parquet"
    assert db_main(["export", "export_types", "-o", str(out), "--quiet"]) == 0
    table = pq.read_table(out)
    assert table.to_pylist() == EXPECTED
    types = {field.name: str(field.type) for field in table.schema}
    assert types["ts"] == "timestamp[us, tz=UTC]" and types["local"] == "timestamp[us]"
    assert (types["amount"], types["ratio"], types["small"]) == ("string", "float", "int16")
    assert table.schema.metadata is None or b"POSTGRESQL" not in b"".join(table.schema.metadata)
    assert all(field.metadata is None for field in table.schema)  # no driver metadata

    # A symbol filter, and a filter nothing matches: the columns with no rows.
    assert db_main(["export", "export_types", "-o", str(out), "--symbols", "bbb", "--quiet"]) == 0
    assert pq.read_table(out).to_pylist() == EXPECTED[2:]
    assert db_main(["export", "export_types", "-o", str(out), "--symbols", "ZZZ", "--quiet"]) == 0
    empty = pq.read_table(out)
    assert empty.num_rows == 0 and empty.schema == table.schema


def test_csv_keeps_nulls_apart_from_empty_texts_and_times_exact(
    typed: PostgresSettings, tmp_path: Path
) -> None:
    out = tmp_path / "types.csv"
    assert db_main(["export", "export_types", "-o", str(out), "--quiet"]) == 0
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[0].startswith("symbol,ts,amount,price,ratio,")
    # COPY CSV: NULL is an empty unquoted field, an empty text is "".
    assert lines[1].endswith(",,,,,,,,,,,,,")
    assert ',"",' in lines[2] and '"{""a"": 1.10}"' in lines[2]
    times = [datetime.fromisoformat(line.split(",")[1]) for line in lines[1:4]]
    assert times == [row["ts"] for row in EXPECTED]  # in the server's zone, the same instants
    assert '"comma, ""quote""\nnew line, Zürich ✓"' in out.read_text(encoding="utf-8")


def test_leaving_a_parquet_read_early_cancels_its_copy(pg_settings: PostgresSettings) -> None:
    # 20 million rows in small batches: read to the end, this would take minutes.
    query = "SELECT a, b FROM generate_series(1, 20000) a, generate_series(1, 1000) b"
    batches = ArrowBatches(pg_settings.as_reader().conninfo(), query, batch_bytes=64 << 10)
    started = time.monotonic()
    for batch in batches:
        assert batch.num_rows > 0
        break
    batches.close()
    assert time.monotonic() - started < 30
    assert not [t for t in threading.enumerate() if t.name == "copy-reader"]
    with psycopg.connect(pg_settings.conninfo(), autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND query LIKE %s"
            " AND pid <> pg_backend_pid()",
            (pg_settings.dbname, "%generate_series(1, 20000)%"),
        ).fetchone():
            assert time.monotonic() < deadline, "the COPY still runs"
            time.sleep(0.1)


def test_an_error_on_the_server_is_one_line_not_a_write_failure(
    typed: PostgresSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A view that fails on the server after some rows have been sent.
    with psycopg.connect(typed.conninfo(), autocommit=True) as conn:
        conn.execute(
            "CREATE VIEW failing AS SELECT 1 / (g - 50000) AS x FROM generate_series(1, 100000) g"
        )
    out = tmp_path / "failing.parquet"
    assert db_main(["export", "failing", "-o", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("db export: cannot read failing: ") and "division by zero" in error
    assert "\n" not in error
    assert not out.exists()  # the error came before the first batch, so before the file
    assert db_main(["export", "failing", "-o", str(tmp_path / "failing.csv"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("db export: cannot read failing: ") and "division by zero" in error
    assert not [t for t in threading.enumerate() if t.name == "copy-reader"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_names_with_percent_signs_and_quotes_export_with_their_filters(
    typed: PostgresSettings, tmp_path: Path, fmt: str
) -> None:
    # `%` is psycopg's placeholder mark: a name holding one must not be read as a parameter.
    with psycopg.connect(typed.conninfo(), autocommit=True) as conn:
        conn.execute(
            'CREATE VIEW "odd%s ""view""" AS SELECT symbol, ts, price AS "p%c", note AS "%%"'
            " FROM export_types"
        )
    out = tmp_path / f"odd.{fmt}"
    args = ["export", 'odd%s "view"', "-o", str(out), "--symbols", "BBB", "--quiet"]
    assert db_main(args) == 0
    if fmt == "parquet":
        table = pq.read_table(out)
        assert table.column_names == ["symbol", "ts", "p%c", "%%"]
        assert table.column("symbol").to_pylist() == ["BBB"]
        assert table.column("p%c").to_pylist() == [-0.0]
    else:
        lines = out.read_text(encoding="utf-8").split("\n")
        assert lines[0] == "symbol,ts,p%c,%%"
        assert len([line for line in lines[1:] if line.startswith("BBB,")]) == 1
