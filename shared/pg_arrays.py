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
from typing import Any

import psycopg
from psycopg.abc import AdaptContext
from psycopg.adapt import Dumper
from psycopg.pq import Format

_HEAD = struct.Struct(">iiIii")  # dimensions, has nulls, element oid, length, lower bound
_EMPTY = struct.Struct(">iiI")  # no dimensions
_LENGTH = struct.Struct(">i")
_NULL = _LENGTH.pack(-1)
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # timestamptz counts microseconds from here
MICROSECOND = timedelta(microseconds=1)


class _Array(list):  # type: ignore[type-arg]
    """A column's values; subclasses name the element type and how one value is sent."""

    element_oid = 0  # pg_type oid of an element
    array_oid = 0  # and of the array (its typarray)

    def elements(self) -> list[bytes]:
        """Each value as its byte length and binary form (NULL: length -1)."""
        one = self.one
        return [_NULL if value is None else one(value) for value in self]

    @staticmethod
    def one(value: Any) -> bytes:
        raise NotImplementedError


class TextArray(_Array):
    element_oid, array_oid = 25, 1009

    @staticmethod
    def one(value: str) -> bytes:
        data = value.encode()
        return _LENGTH.pack(len(data)) + data


class ByteaArray(_Array):
    element_oid, array_oid = 17, 1001

    @staticmethod
    def one(value: bytes) -> bytes:
        return _LENGTH.pack(len(value)) + bytes(value)


class _FixedWidthArray(_Array):
    """Values of one fixed-width binary form: `item` packs (its byte length, the value)."""

    item = struct.Struct(">i")

    def elements(self) -> list[bytes]:
        pack, width = self.item.pack, self.item.size - _LENGTH.size
        return [_NULL if value is None else pack(width, value) for value in self]


class Float8Array(_FixedWidthArray):
    element_oid, array_oid, item = 701, 1022, struct.Struct(">id")


class Int4Array(_FixedWidthArray):
    element_oid, array_oid, item = 23, 1007, struct.Struct(">ii")


class Int8Array(_FixedWidthArray):
    element_oid, array_oid, item = 20, 1016, struct.Struct(">iq")


class BoolArray(_FixedWidthArray):
    element_oid, array_oid, item = 16, 1000, struct.Struct(">i?")


class TimestamptzArray(_Array):
    """Timezone-aware datetimes (a naive one is refused: its instant is unknown)."""

    element_oid, array_oid = 1184, 1185

    @staticmethod
    def one(value: datetime) -> bytes:
        if value.tzinfo is None or value.utcoffset() is None:
            raise psycopg.DataError(f"timestamptz[] needs aware datetimes, got {value!r}")
        return Int8Array.item.pack(8, (value - PG_EPOCH) // MICROSECOND)


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
