"""Deltas over matrices, for the sources of thousands of rows (pg_stat_statements, and each
database's tables and indexes): the same rules as ``model.deltas.compute``'s row loop (tests
compare both ways), with the cumulative state kept as columns.

Why columns all the way (#21, the repository side of a snapshot): with the state kept as a
dict of per-row value lists, every capture rebuilt the previous matrices from 5,000 Python
lists and made 5,000 new lists for the next one (a third of the delta time). A ``ColumnState``
is the capture's keys, ``stats_since`` and two matrices (integer and float counters) - kept as
it is in the process's state cache, aligned to the next capture by one dict lookup per row,
stored in a binary form whose matrices are read back without parsing a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from .sources import Source


@dataclass(frozen=True)
class Shape:
    """What a delta needs of a source, worked out once per source (not once per row)."""

    keys: tuple[str, ...]
    counters: tuple[str, ...]
    since: str | None
    decimals: tuple[int, ...]  # positions (in counters) of numeric counters
    others: tuple[str, ...]  # columns stored as they are (keys, gauges, since)
    int_cols: tuple[str, ...]  # integer counters (exact in int64)
    float_cols: tuple[str, ...]  # float8 and numeric counters (numeric kept as float)


@cache
def shape_of(source: Source) -> Shape:
    counters = tuple(source.of_kind("counter"))
    since = source.of_kind("since")
    numeric = {c.name for c in source.columns if c.pgtype == "numeric"}
    return Shape(
        keys=tuple(source.of_kind("key")),
        counters=counters,
        since=since[0] if since else None,
        decimals=tuple(i for i, c in enumerate(counters) if c in numeric),
        others=tuple(c for c in source.names if c not in set(counters)),
        int_cols=tuple(
            c.name for c in source.columns if c.kind == "counter" and c.pgtype == "int8"
        ),
        float_cols=tuple(
            c.name for c in source.columns if c.kind == "counter" and c.pgtype != "int8"
        ),
    )


def getter(names: tuple[str, ...]):
    """A C-level getter of several columns of a row, always returning a tuple."""
    if len(names) == 1:
        one = itemgetter(names[0])
        return lambda r: (one(r),)
    return itemgetter(*names) if names else (lambda r: ())


def str_keys(shape: Shape, rows: Sequence[Any]) -> list[str]:
    """The row-loop state's keys: the key columns joined by '|'."""
    ks = shape.keys
    if len(ks) == 1:
        k0 = ks[0]
        return [str(r[k0]) for r in rows]
    return ["|".join([str(r[k]) for k in ks]) for r in rows]


@dataclass(frozen=True)
class DeltaBlock:
    """The deltas of the rows kept, as two matrices in the source's counter order split by
    type: what the repository writes as binary arrays without a Python object per value.
    A zero or unknown delta is 0 here (stored as NULL, as compute() gives it as None)."""

    source: Source
    rows: list[dict[str, Any]]  # the captured rows kept, in capture order (keys and gauges)
    ints: np.ndarray  # (len(rows), len(int_cols)) int64
    floats: np.ndarray  # (len(rows), len(float_cols)) float64, no NaN

    @property
    def int_cols(self) -> tuple[str, ...]:
        return shape_of(self.source).int_cols

    @property
    def float_cols(self) -> tuple[str, ...]:
        return shape_of(self.source).float_cols


class BlockRows(Sequence[dict[str, Any]]):
    """A DeltaBlock's rows as compute() gives them (dicts, a zero delta as None), made on first
    use: the repository writes the block itself and never needs them."""

    def __init__(self, block: DeltaBlock) -> None:
        self.block = block
        self._rows: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.block.rows)

    def __getitem__(self, i):  # type: ignore[override]
        return self._materialize()[i]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._materialize())

    def __eq__(self, other: object) -> bool:
        return list(self) == (list(other) if isinstance(other, Sequence) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BlockRows({len(self)} rows)"

    def _materialize(self) -> list[dict[str, Any]]:
        if self._rows is None:
            b, shape = self.block, shape_of(self.block.source)
            kept = getter(shape.others)
            cols = {c: [v if v else None for v in b.ints[:, j].tolist()] for j, c in
                    enumerate(shape.int_cols)}  # fmt: skip
            cols.update(
                {
                    c: [v if v else None for v in b.floats[:, j].tolist()]
                    for j, c in enumerate(shape.float_cols)
                }  # fmt: skip
            )
            ordered = [cols[c] for c in shape.counters]
            self._rows = []
            for i, r in enumerate(b.rows):
                out = dict(zip(shape.others, kept(r), strict=True))
                out.update(zip(shape.counters, [col[i] for col in ordered], strict=True))
                self._rows.append(out)
        return self._rows


class ColumnState:
    """A source's cumulative counters at a capture, as columns: row keys (tuples of the key
    columns), ``since`` (microseconds since 1970 as int64, NO_SINCE for NULL; None for a
    source without one), the integer counters (int64, a NULL as 0 with ``int_null`` saying
    where) and the float counters (float64, NULL as NaN). Stored in a binary form
    (``to_bytes``/``from_bytes``: a JSON header with the keys, then the raw matrices, read back
    without parsing a number); a state kept by an older opscore (a dict of key -> [since,
    counters...]) is read by ``from_row_state``."""

    MAGIC = b"OPSCOL1\n"

    def __init__(
        self,
        keys: list[Any],
        since: np.ndarray | None,
        ints: np.ndarray,
        int_null: np.ndarray | None,
        floats: np.ndarray,
        int_cols: tuple[str, ...],
        float_cols: tuple[str, ...],
        *,
        joined_keys: bool = False,
    ) -> None:
        self.keys, self.since = keys, since
        self.ints, self.int_null, self.floats = ints, int_null, floats
        self.int_cols, self.float_cols = tuple(int_cols), tuple(float_cols)
        self.joined_keys = joined_keys  # keys are the row loop's 'a|b|c' strings
        self._index: dict[Any, int] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        n = len(self.int_cols) + len(self.float_cols)
        return f"ColumnState({len(self)} rows, {n} counters)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ColumnState):
            return NotImplemented
        return (
            (self.int_cols, self.float_cols, self.joined_keys)
            == (other.int_cols, other.float_cols, other.joined_keys)
            and self.keys == other.keys
            and (self.since is None) == (other.since is None)
            and (self.since is None or np.array_equal(self.since, other.since))
            and np.array_equal(self.ints, other.ints)
            and np.array_equal(self._nulls(), other._nulls())
            and np.array_equal(self.floats, other.floats, equal_nan=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def _nulls(self) -> np.ndarray:
        if self.int_null is None:
            return np.zeros(self.ints.shape, dtype=bool)
        return self.int_null

    def positions(self, shape: Shape, rows: Sequence[Any], keys: list[Any]) -> np.ndarray:
        """Where each of ``rows`` (with ``keys``) is in this state; -1 for a new row."""
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.keys)}  # a repeated key: the last
        look = str_keys(shape, rows) if self.joined_keys else keys
        get = self._index.get
        return np.fromiter((get(k, -1) for k in look), np.int64, len(look))

    # -- stored form ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """MAGIC, the header's length (4 bytes), a JSON header (sizes, columns, the keys as
        one list per key part), then the int64 matrix, the float64 matrix, ``since`` and the
        NULL mask as raw little-endian arrays."""
        n = len(self)
        header = orjson.dumps(
            {
                "n": n,
                "int_cols": self.int_cols,
                "float_cols": self.float_cols,
                "joined_keys": self.joined_keys,
                "keys": self.keys if self.joined_keys else list(zip(*self.keys, strict=True)),
                "since": self.since is not None,
                "int_null": self.int_null is not None,
            }
        )
        parts = [self.MAGIC, len(header).to_bytes(4, "little"), header]
        parts.append(np.ascontiguousarray(self.ints, "<i8").tobytes())
        parts.append(np.ascontiguousarray(self.floats, "<f8").tobytes())
        if self.since is not None:
            parts.append(np.ascontiguousarray(self.since, "<i8").tobytes())
        if self.int_null is not None:
            parts.append(np.ascontiguousarray(self.int_null, np.bool_).tobytes())
        return b"".join(parts)

    @classmethod
    def is_stored(cls, data: bytes) -> bool:
        return data[: len(cls.MAGIC)] == cls.MAGIC

    @classmethod
    def from_bytes(cls, data: bytes) -> ColumnState:
        """A state written by ``to_bytes`` (its arrays read-only views of ``data``)."""
        at = len(cls.MAGIC)
        size = int.from_bytes(data[at : at + 4], "little")
        h = orjson.loads(data[at + 4 : at + 4 + size])
        at += 4 + size
        n, ic, fc = h["n"], tuple(h["int_cols"]), tuple(h["float_cols"])
        if h["joined_keys"]:
            keys = list(h["keys"])
        else:  # the key columns; a source without keys (one row) has none
            keys = list(zip(*h["keys"], strict=True)) if h["keys"] else [()] * n
        if len(keys) != n:
            raise ValueError(f"a delta state of {n} rows holds {len(keys)} keys")

        def take(dtype: str, count: int) -> np.ndarray:
            nonlocal at
            arr = np.frombuffer(data, dtype, count, at)
            at += arr.nbytes
            return arr

        ints = take("<i8", n * len(ic)).reshape(n, len(ic))
        floats = take("<f8", n * len(fc)).reshape(n, len(fc))
        since = take("<i8", n) if h["since"] else None
        null = take(np.bool_, n * len(ic)).reshape(n, len(ic)) if h["int_null"] else None
        if at != len(data):
            raise ValueError(f"a delta state of {len(data)} bytes, {at} expected")
        return cls(keys, since, ints, null, floats, ic, fc, joined_keys=h["joined_keys"])

    @classmethod
    def from_row_state(cls, shape: Shape, last: dict[str, list[Any]]) -> ColumnState:
        """An older opscore's state (key -> [since, counters...], since as ISO text)."""
        keys = list(last)
        vals = list(last.values())
        pos = {c: n + 1 for n, c in enumerate(shape.counters)}
        ints, null = _int_matrix(vals, tuple(pos[c] for c in shape.int_cols))
        floats = _float_matrix(vals, tuple(pos[c] for c in shape.float_cols))
        since = None
        if shape.since is not None:
            since = micros(None if v[0] is None else datetime.fromisoformat(v[0]) for v in vals)
        return cls(keys, since, ints, null, floats, shape.int_cols, shape.float_cols,
                   joined_keys=True)  # fmt: skip

    def to_row_state(self, shape: Shape) -> dict[str, list[Any]]:
        """The row loop's form of this state (key -> [since, counters...]; since as ISO text
        in UTC): for the loop's fallback and to compare both ways in tests."""
        cols = {c: self.ints[:, j].tolist() for j, c in enumerate(self.int_cols)}
        if self.int_null is not None:
            for j, c in enumerate(self.int_cols):
                for i in np.flatnonzero(self.int_null[:, j]).tolist():
                    cols[c][i] = None
        cols.update(
            {
                c: [None if v != v else v for v in self.floats[:, j].tolist()]  # NaN: NULL
                for j, c in enumerate(self.float_cols)
            }
        )
        ordered = [cols[c] for c in shape.counters]
        since: list[str | None] = [None] * len(self)
        if self.since is not None:
            since = [
                None if us == NO_SINCE else (_EPOCH + timedelta(microseconds=us)).isoformat()
                for us in self.since.tolist()
            ]
        keys = self.keys if self.joined_keys else ["|".join(map(str, k)) for k in self.keys]
        return {
            k: [s, *[col[i] for col in ordered]]
            for i, (k, s) in enumerate(zip(keys, since, strict=True))
        }


#: a NULL ``since`` in a ColumnState
NO_SINCE = np.iinfo(np.int64).min
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def micros(values: Iterable[datetime | None]) -> np.ndarray:
    """Timestamps as microseconds since 1970 (exact, integer arithmetic), NO_SINCE for None."""
    return np.fromiter((NO_SINCE if v is None else (v - _EPOCH) // _US for v in values), np.int64)


def _int_matrix(rows: Sequence[Any], cols: tuple[Any, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer counters exactly (int64), and where they are NULL (None when nowhere). Raises
    OverflowError beyond int64 (PostgreSQL's int8 never is; the host source could be)."""
    n = len(rows)
    if not cols:
        return np.zeros((n, 0), dtype=np.int64), None
    get = getter(cols)
    try:  # fromiter over the flattened values: ~1.6x np.array on a list of tuples
        flat = np.fromiter(chain.from_iterable(map(get, rows)), np.int64, n * len(cols))
        return flat.reshape(n, len(cols)), None
    except TypeError:  # a NULL somewhere (a counter the server does not have)
        obj = np.array(list(map(get, rows)), dtype=object).reshape(n, len(cols))
        null = _IS_NONE(obj).astype(bool)
        obj[null] = 0
        return obj.astype(np.int64), null


def _float_matrix(rows: Sequence[Any], cols: tuple[Any, ...]) -> np.ndarray:
    """Float and numeric counters as float64 (numeric through float, as the row loop keeps
    them); NULL as NaN."""
    n = len(rows)
    if not cols:
        return np.zeros((n, 0), dtype=np.float64)
    try:
        flat = np.fromiter(chain.from_iterable(map(getter(cols), rows)), np.float64, n * len(cols))
    except TypeError:  # a NULL: np.array makes it NaN
        return np.array(list(map(getter(cols), rows)), dtype=np.float64).reshape(n, len(cols))
    return flat.reshape(n, len(cols))


_IS_NONE = np.frompyfunc(lambda v: v is None, 1, 1)


def capture_state(source: Source, rows: list[dict[str, Any]]) -> ColumnState:
    """A capture's counters as a ColumnState (OverflowError beyond int64)."""
    shape = shape_of(source)
    ints, null = _int_matrix(rows, shape.int_cols)
    floats = _float_matrix(rows, shape.float_cols)
    keys = list(map(getter(shape.keys), rows))
    since = micros(r[shape.since] for r in rows) if shape.since else None
    return ColumnState(keys, since, ints, null, floats, shape.int_cols, shape.float_cols)


@dataclass
class BlockDeltas:
    block: DeltaBlock
    new_rows: int
    reset_rows: int


def block_deltas(
    source: Source,
    rows: list[dict[str, Any]],
    cur: ColumnState,
    last: ColumnState | dict[str, Any],
    source_reset: bool,
) -> BlockDeltas:
    """compute()'s rules over matrices: ``cur`` (this capture's state, from ``rows``) against
    ``last`` (the previous state, columns or an older opscore's rows)."""
    shape = shape_of(source)
    prev = last if isinstance(last, ColumnState) else ColumnState.from_row_state(shape, last)
    n = len(rows)
    at = prev.positions(shape, rows, cur.keys)
    isnew = at < 0
    take = np.where(isnew, 0, at)
    ci, cf = cur.ints, cur.floats
    if len(prev):
        pi, pf = prev.ints[take], prev.floats[take]
        pnull = prev.int_null[take] if prev.int_null is not None else None
    else:
        pi, pf, pnull = np.zeros_like(ci), np.zeros_like(cf), None
    # a new row is paired with row 0 here; it is counted whole (since its creation) below
    if cur.since is not None and prev.since is not None and len(prev):
        # a reset since the last capture (the row loop's "since changed"; NULL now: no)
        since = (cur.since != NO_SINCE) & (cur.since != prev.since[take])
    else:
        since = np.zeros(n, dtype=bool)
    either = np.zeros(ci.shape, dtype=bool)
    if cur.int_null is not None:
        either |= cur.int_null
    if pnull is not None:
        either |= pnull
    known = ~either  # NULL on either side: no delta, no decrease
    down = ((ci < pi) & known).any(axis=1) | (cf < pf).any(axis=1)  # NaN compares false
    reset = ~isnew & (down | since | source_reset)
    whole = (isnew | reset)[:, None]  # counted from zero (or since creation): the value
    di = np.where(whole, ci, np.where(known, ci - pi, 0))  # a NULL value is 0 in ci
    df = np.where(whole, cf, cf - pf)
    df[np.isnan(df)] = 0.0
    keep = np.ones(n, dtype=bool)
    if source.new_rows == "baseline" and not source_reset:
        keep &= ~isnew
    if source.only_changed:
        keep &= (di != 0).any(axis=1) | (df != 0).any(axis=1)
    kept = np.flatnonzero(keep)
    block = DeltaBlock(source, [rows[i] for i in kept.tolist()], di[kept], df[kept])
    return BlockDeltas(block, int(isnew.sum()), int(reset.sum()))
