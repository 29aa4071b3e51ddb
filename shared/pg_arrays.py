"""One-dimensional arrays sent to PostgreSQL in its binary array format, built in a few joins.

A batch statement passes its rows as parallel arrays (`unnest(%b::text[], …)`). psycopg's
generic list dumper calls an element dumper per value in Python: at a live batch's few hundred
rows it was the analytics consumer's largest single cost (py-spy: 15% of its CPU, in the
alert insert and the state upsert). Wrap a column in the class of its element type and pass it
with `%b`; the element type is fixed, so nothing is guessed per value.

Format (PostgreSQL's array_send): dimensions, has-nulls flag, element oid; per dimension its
length and lower bound (1); per element its byte length (-1 for NULL) and its binary form.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.abc import AdaptContext
from psycopg.adapt import Dumper
from psycopg.pq import Format

_HEAD = struct.Struct(">iiIii")  # dimensions, has nulls, element oid, length, lower bound
_EMPTY = struct.Struct(">iiI")  # no dimensions
_LENGTH = struct.Struct(">i")
_NULL = _LENGTH.pack(-1)
_FLOAT8 = struct.Struct(">id")  # byte length 8, value
_INT4 = struct.Struct(">ii")
_INT8 = struct.Struct(">iq")
_TRUE, _FALSE = _LENGTH.pack(1) + b"\x01", _LENGTH.pack(1) + b"\x00"
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # timestamptz counts microseconds from here
MICROSECOND = timedelta(microseconds=1)


class _Array(list):  # type: ignore[type-arg]
    """A column's values; subclasses name the element type."""

    element_oid = 0  # pg_type oid of an element
    array_oid = 0  # and of the array (its typarray)

    def elements(self) -> list[bytes]:
        """Each value as its byte length and binary form (NULL: length -1)."""
        raise NotImplementedError


class TextArray(_Array):
    element_oid, array_oid = 25, 1009

    def elements(self) -> list[bytes]:
        out = []
        for value in self:
            if value is None:
                out.append(_NULL)
            else:
                data = value.encode()
                out.append(_LENGTH.pack(len(data)) + data)
        return out


class ByteaArray(_Array):
    element_oid, array_oid = 17, 1001

    def elements(self) -> list[bytes]:
        return [_NULL if v is None else _LENGTH.pack(len(v)) + bytes(v) for v in self]


class Float8Array(_Array):
    element_oid, array_oid = 701, 1022

    def elements(self) -> list[bytes]:
        return [_NULL if v is None else _FLOAT8.pack(8, v) for v in self]


class Int4Array(_Array):
    element_oid, array_oid = 23, 1007

    def elements(self) -> list[bytes]:
        return [_NULL if v is None else _INT4.pack(4, v) for v in self]


class Int8Array(_Array):
    element_oid, array_oid = 20, 1016

    def elements(self) -> list[bytes]:
        return [_NULL if v is None else _INT8.pack(8, v) for v in self]


class BoolArray(_Array):
    element_oid, array_oid = 16, 1000

    def elements(self) -> list[bytes]:
        return [_NULL if v is None else _TRUE if v else _FALSE for v in self]


class TimestamptzArray(_Array):
    """Timezone-aware datetimes (a naive one is refused: its instant is unknown)."""

    element_oid, array_oid = 1184, 1185

    def elements(self) -> list[bytes]:
        out = []
        for value in self:
            if value is None:
                out.append(_NULL)
                continue
            if value.tzinfo is None or value.utcoffset() is None:
                raise psycopg.DataError(f"timestamptz[] needs aware datetimes, got {value!r}")
            out.append(_INT8.pack(8, (value - PG_EPOCH) // MICROSECOND))
        return out


class _ArrayDumper(Dumper):
    format = Format.BINARY

    def __init__(self, cls: type, context: AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        self.oid = cls.array_oid  # the parameter's type: the class dumped says which

    def dump(self, obj: _Array) -> bytes:
        if not obj:
            return _EMPTY.pack(0, 0, obj.element_oid)
        elements = obj.elements()
        has_null = int(_NULL in elements)
        return b"".join([_HEAD.pack(1, has_null, obj.element_oid, len(obj), 1), *elements])


for _array in (
    TextArray,
    ByteaArray,
    Float8Array,
    Int4Array,
    Int8Array,
    BoolArray,
    TimestamptzArray,
):
    # Connections copy the global adapters when they open: import this module before a pool.
    psycopg.adapters.register_dumper(_array, _ArrayDumper)
