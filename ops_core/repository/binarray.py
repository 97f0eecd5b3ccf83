"""One-dimensional PostgreSQL arrays built in their binary form (``array_send``), passed to an
INSERT as one parameter each: how a snapshot's columnar rows are written.

Written here rather than left to psycopg's list adaptation: psycopg dumps a Python list element
by element in Python (with a quoting check per text element), which for a thousand tables' 13
names, timestamps and sizes cost more than the rest of their write; numpy builds a whole
column of numbers at once, and a text column is one join.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format


class ArrayBytes(bytes):
    """An array already in PostgreSQL's binary form (array_send), passed as one parameter."""

    oid = 0


def _kind(name: str, oid: int) -> type[ArrayBytes]:
    return type(name, (ArrayBytes,), {"oid": oid})


#: element type -> (parameter class with the array type's oid, element oid, big-endian dtype)
_ARRAYS: dict[str, tuple[type[ArrayBytes], int, str]] = {
    "int4": (_kind("Int4Array", 1007), 23, ">i4"),
    "int8": (_kind("Int8Array", 1016), 20, ">i8"),
    "float8": (_kind("Float8Array", 1022), 701, ">f8"),
    "oid": (_kind("OidArray", 1028), 26, ">u4"),
    # microseconds since 2000-01-01 UTC, PostgreSQL's integer timestamps
    "timestamptz": (_kind("TimestamptzArray", 1185), 1184, ">i8"),
}
_TEXT = _kind("TextArray", 1009)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _array_dumper(kind: type[ArrayBytes]) -> type[Dumper]:
    class _Dumper(Dumper):
        # the array's type oid is set per instance, not on the class: psycopg registers a
        # class oid for COPY's set_types too, where it would stand in for int8[] and the like
        format = Format.BINARY

        def __init__(self, cls: type, context: Any = None) -> None:
            super().__init__(cls, context)
            self.oid = kind.oid

        def dump(self, obj: Any) -> bytes:
            return bytes(obj)

    return _Dumper


for _k in [*(k for k, _, _ in _ARRAYS.values()), _TEXT]:
    psycopg.adapters.register_dumper(_k, _array_dumper(_k))


def _header(n: int, has_null: bool, elem_oid: int) -> bytes:
    return struct.pack(">iiIii", 1, int(has_null), elem_oid, n, 1)


def array(
    values: np.ndarray, elem: str, zero_is_null: bool, null: np.ndarray | None = None
) -> ArrayBytes:
    """``values`` as a one-dimensional PostgreSQL array in binary form, built by numpy: each
    element a length and its big-endian value, or length -1 (NULL, no value) where ``null``
    says, and for a zero counter with ``zero_is_null`` - the same array
    ``array_agg(NULLIF(x, 0))`` makes."""
    kind, elem_oid, be = _ARRAYS[elem]
    n = len(values)
    size = np.dtype(be).itemsize
    isnull = values == 0 if zero_is_null else np.zeros(n, dtype=bool)
    if null is not None:
        isnull = isnull | null
    rec = np.empty(n, dtype=[("l", ">i4"), ("v", be)])
    rec["l"] = np.where(isnull, -1, size)
    rec["v"] = values
    keep = np.ones((n, 4 + size), dtype=bool)
    keep[isnull, 4:] = False  # a NULL is its length alone
    body = rec.view(np.uint8).reshape(n, 4 + size)[keep].tobytes()
    return kind(_header(n, bool(isnull.any()), elem_oid) + body)


def value_array(values: Sequence[Any], typ: str, encoding: str = "utf-8") -> ArrayBytes | None:
    """Python values (None for NULL) of one column as a binary array of ``typ`` (text in the
    connection's ``encoding``, int4/int8/oid, float8, timestamptz), or None for another type
    (adapted by psycopg)."""
    if typ == "text":
        parts, has_null = [], False
        for v in values:
            if v is None:
                parts.append(b"\xff\xff\xff\xff")
                has_null = True
            else:
                b = (v if isinstance(v, str) else str(v)).encode(encoding)
                parts += (len(b).to_bytes(4, "big"), b)
        return _TEXT(_header(len(values), has_null, 25) + b"".join(parts))
    if typ not in _ARRAYS:
        return None
    null = np.fromiter((v is None for v in values), bool, len(values))
    if typ == "timestamptz":  # microseconds since 2000-01-01, exactly (integer arithmetic)
        nums: np.ndarray = np.fromiter(
            (0 if v is None else (v - _PG_EPOCH) // _US for v in values), np.int64, len(values)
        )
    else:
        dtype = np.float64 if typ == "float8" else np.int64
        nums = np.fromiter((0 if v is None else v for v in values), dtype, len(values))
    return array(nums, typ, False, null)
