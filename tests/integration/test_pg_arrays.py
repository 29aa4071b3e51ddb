"""shared/pg_arrays.py: each array class reaches PostgreSQL value for value, NULLs and edges
included, as the array type its class names."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from shared.pg_arrays import (
    BoolArray,
    ByteaArray,
    Float8Array,
    Int4Array,
    Int8Array,
    TextArray,
    TimestamptzArray,
)
from shared.settings import PostgresSettings

NEW_YORK = timezone(timedelta(hours=-5))
CASES = [
    (TextArray, "text[]", ["AAPL", "", "BRK.B", "ÆØÅ 株式 📈", None, 'a,b "q" {x} \\']),
    (ByteaArray, "bytea[]", [b"", b"\x00\xff" * 5_000, None, bytes(range(256))]),
    (Float8Array, "double precision[]", [0.0, -0.0, 1.5, -1e308, 5e-324, math.inf, None]),
    (Int4Array, "integer[]", [0, 1, -1, 2**31 - 1, -(2**31), None]),
    (Int8Array, "bigint[]", [0, 2**63 - 1, -(2**63), None, 42]),
    (BoolArray, "boolean[]", [True, False, None]),
    (
        TimestamptzArray,
        "timestamp with time zone[]",
        [
            datetime(2025, 3, 3, 14, 30, 0, 123_456, tzinfo=UTC),
            datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # before PostgreSQL's epoch
            datetime(2025, 7, 4, 9, 30, tzinfo=NEW_YORK),
            None,
        ],
    ),
]


@pytest.fixture
def conn(pg_settings: PostgresSettings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_settings.conninfo()) as conn:
        yield conn


@pytest.mark.parametrize(("array", "pg_type", "values"), CASES, ids=[c[1] for c in CASES])
def test_values_come_back_as_sent(
    conn: psycopg.Connection, array: type, pg_type: str, values: list[object]
) -> None:
    back, sent_as, length = conn.execute(
        "SELECT %b, pg_typeof(%b)::text, cardinality(%b)",
        (array(values), array(values), array(values)),
    ).fetchone()
    assert sent_as == pg_type
    assert length == len(values)
    assert [bytes(v) if isinstance(v, memoryview) else v for v in back] == values


@pytest.mark.parametrize(("array", "pg_type"), [(c[0], c[1]) for c in CASES])
def test_an_empty_array_is_an_empty_array_of_its_type(
    conn: psycopg.Connection, array: type, pg_type: str
) -> None:
    back, sent_as = conn.execute("SELECT %b, pg_typeof(%b)::text", (array(), array())).fetchone()
    assert (back, sent_as) == ([], pg_type)


def test_nan_stays_nan(conn: psycopg.Connection) -> None:
    (back,) = conn.execute("SELECT %b", (Float8Array([math.nan]),)).fetchone()
    assert math.isnan(back[0])


def test_a_naive_datetime_is_refused_before_it_is_sent(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.DataError, match="aware"):
        conn.execute("SELECT %b", (TimestamptzArray([datetime(2025, 1, 1)]),))


def test_unnest_of_several_columns_lines_rows_up(conn: psycopg.Connection) -> None:
    """The way the batch statements use them: parallel columns, one row per index."""
    rows = conn.execute(
        "SELECT * FROM unnest(%b::text[], %b::float8[], %b::timestamptz[]) AS w(s, v, ts)",
        (
            TextArray(["A", "B"]),
            Float8Array([1.0, None]),
            TimestamptzArray([datetime(2025, 1, 2, tzinfo=UTC)] * 2),
        ),
    ).fetchall()
    assert rows == [
        ("A", 1.0, datetime(2025, 1, 2, tzinfo=UTC)),
        ("B", None, datetime(2025, 1, 2, tzinfo=UTC)),
    ]
