"""Writing snapshots: one repository transaction per capture, COPY for volume.

Reset detection and deltas are one pure step (``model.deltas.snapshot_deltas``) over the
previous snapshot's cumulative state, kept per target and source in ``opscore.snapshot_state``
(read and replaced in the same transaction, under a per-target advisory lock, so two concurrent
captures of one target serialise); this module reads that state and writes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
import psycopg

from ..model import deltas
from ..model.capture import Capture, StmtKey
from ..model.sources import SOURCES, is_own_sql
from . import binarray
from . import snapshot_columnar as columnar

LOCK_NAMESPACE = 0x736E6170  # "snap"

STMT_COUNTERS = SOURCES["pg_stat_statements"].of_kind("counter")
DB_COLUMNS = (
    ["datid", "datname", "own", "numbackends", "size_bytes"]
    + SOURCES["pg_stat_database"].of_kind("counter")
    + ["stats_reset"]
)
IO_COLUMNS = SOURCES["pg_stat_io"].names
# small sources kept as JSON in snap_cluster
JSON_SOURCES = deltas.JSON_SOURCES


def known_statements(conn: psycopg.Connection, target_id: int) -> dict[StmtKey, int]:
    """The target's statements in the repository: key -> stmt_id (not to be changed: it may
    be the copy this process keeps).

    Kept between captures (5,000 rows read back per snapshot were ~6 ms of its repository
    side): statements are only ever added, by snapshot writes with increasing ids, or removed
    with their target. Each call checks the repository's count and highest id of the target's
    statements (one index scan) and the table's identity (a repository created again), reads
    only the statements added since (another process's capture), and reads all of them again
    when the figures do not add up."""
    info = conn.info
    key = (info.host, info.port, info.dbname, target_id)
    count, top, table = conn.execute(
        "SELECT count(*), coalesce(max(stmt_id), 0), 'opscore.statements'::regclass::oid "
        "FROM opscore.statements WHERE target_id = %s",
        (target_id,),
    ).fetchone()  # type: ignore[misc]
    with _KNOWN_LOCK:
        hit = _KNOWN.get(key)
    if hit is not None and hit[2] == table and hit[0] <= count and hit[1] <= top:
        known = hit[3]
        if (hit[0], hit[1]) != (count, top):
            added = _statement_ids(conn, target_id, hit[1])
            if hit[0] + len(added) == count:
                known = {**known, **added}
            else:
                known = None  # removed and added: read again
        if known is not None:
            _remember(key, (count, top, table, known))
            return known
    known = _statement_ids(conn, target_id, 0)
    _remember(key, (count, top, table, known))
    return known


def _statement_ids(conn: psycopg.Connection, target_id: int, after: int) -> dict[StmtKey, int]:
    rows = conn.execute(
        "SELECT queryid, dbid, userid, toplevel, stmt_id FROM opscore.statements "
        "WHERE target_id = %s AND stmt_id > %s",
        (target_id, after),
    ).fetchall()
    return {(r[0], r[1], r[2], r[3]): r[4] for r in rows}


#: (host, port, dbname, target_id) -> (count, highest stmt_id, table oid, key -> stmt_id)
_KNOWN: dict[tuple[Any, ...], tuple[int, int, int, dict[StmtKey, int]]] = {}
_KNOWN_LOCK = threading.Lock()
#: ~200 bytes a statement: 500,000 (100 targets of 5,000) is ~100 MB, as the state cache
_KNOWN_MAX_STATEMENTS = 500_000


def _remember(key: tuple[Any, ...], entry: tuple[int, int, int, dict[StmtKey, int]]) -> None:
    with _KNOWN_LOCK:
        _KNOWN.pop(key, None)
        total = sum(len(e[3]) for e in _KNOWN.values())
        while _KNOWN and total + len(entry[3]) > _KNOWN_MAX_STATEMENTS:
            total -= len(_KNOWN.pop(next(iter(_KNOWN)))[3])  # the least recently used
        if len(entry[3]) <= _KNOWN_MAX_STATEMENTS:
            _KNOWN[key] = entry


def repository_identity(conn: psycopg.Connection) -> tuple[tuple[Any, ...], str]:
    row = conn.execute(
        "SELECT pg_postmaster_start_time(), current_setting('port')::int, current_database()"
    ).fetchone()
    assert row is not None
    return (row[0], row[1]), row[2]


def sizes_due(conn: psycopg.Connection, target_id: int, interval_minutes: int) -> bool:
    """Sizes are read on a slower cadence: when none was read within the interval."""
    row = conn.execute(
        "SELECT 1 FROM opscore.snapshots WHERE target_id = %s AND with_sizes "
        "AND captured_at > now() - make_interval(mins => %s) LIMIT 1",
        (target_id, interval_minutes),
    ).fetchone()
    return row is None


def _json_default(o: Any) -> Any:
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return float(o)


def _jsonb(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _state_json(value: Any) -> bytes:
    """A source's delta state as JSON bytes (``snapshot_state.state`` is bytea since migration
    0032: no JSON validation or compression by the repository on a value only opscore reads):
    orjson, several times faster than json on the ~1 MB state of 5,000 statements (the same
    JSON: ISO datetimes, numbers, strings). A ColumnState (statements, tables, indexes) is
    written in its own binary form (its matrices as raw arrays)."""
    if isinstance(value, deltas.ColumnState):
        return value.to_bytes()
    return orjson.dumps(value, default=_json_default)


def _state_value(data: bytes) -> Any:
    """A stored state read back (a ColumnState's bytes become the ColumnState again)."""
    data = bytes(data)
    if deltas.ColumnState.is_stored(data):
        return deltas.ColumnState.from_bytes(data)
    return orjson.loads(data)


def record_failure(conn: psycopg.Connection, target_id: int, reason: str) -> int:
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO opscore.snapshots (target_id, captured_at, status, error) "
            "VALUES (%s, clock_timestamp(), 'failed', %s) RETURNING snapshot_id",
            (target_id, reason),
        ).fetchone()
    assert row is not None
    return row[0]


def store(conn: psycopg.Connection, cap: Capture, started: float | None = None) -> tuple[int, bool]:
    """Write a capture in one transaction. Returns (snapshot_id, created); a capture already
    stored (same target and moment) is not written twice."""
    if cap.failed or cap.captured_at is None:
        return record_failure(conn, cap.target_id, cap.failed or "no data captured"), True
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, cap.target_id))
        dup = conn.execute(
            "SELECT snapshot_id FROM opscore.snapshots WHERE target_id = %s AND captured_at = %s",
            (cap.target_id, cap.captured_at),
        ).fetchone()
        if dup:
            return dup[0], False
        sid = _write(conn, cap, deltas.snapshot_deltas(_previous(conn, cap.target_id), cap))
        if started is not None:
            conn.execute(
                "UPDATE opscore.snapshots SET total_ms = %s WHERE snapshot_id = %s",
                (round((time.perf_counter() - started) * 1000, 3), sid),
            )
        return sid, True


class _StateCache:
    """The delta state this process wrote with its last capture of each target, so the next
    capture (a collector snapshots its targets every few minutes, in one process) does not
    read its own state back: ~1 MB of JSON for 5,000 statements, read and parsed per snapshot.

    An entry is used only when the snapshot it was written with is still the target's newest
    usable one, matched by id AND capture time (a capture by another process, a deleted
    snapshot, or a repository or schema created again, whose ids restart, make it a miss and
    the state is read from ``opscore.snapshot_state`` as before). The states are the values
    read back would be (JSON values; ColumnStates for statements, tables and indexes), never
    changed by the delta computation. Bounded by the size of their stored form (oldest entries
    dropped first)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: dict[tuple[Any, ...], tuple[int, Any, dict[str, Any], int]] = {}
        self.bytes = 0
        self.lock = threading.Lock()

    @staticmethod
    def key(conn: psycopg.Connection, target_id: int) -> tuple[Any, ...]:
        info = conn.info
        return (info.host, info.port, info.dbname, target_id)

    def get(self, key: tuple[Any, ...], snapshot_id: int, captured_at: Any) -> dict | None:
        with self.lock:
            hit = self.entries.get(key)
        if hit is None or hit[0] != snapshot_id or hit[1] != captured_at:
            return None
        return hit[2]

    def put(self, key, snapshot_id: int, captured_at: Any, states: dict, size: int) -> None:
        with self.lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.bytes -= old[3]
            if size > self.max_bytes:
                return
            while self.entries and self.bytes + size > self.max_bytes:
                oldest = next(iter(self.entries))  # dicts keep insertion order
                self.bytes -= self.entries.pop(oldest)[3]
            self.entries[key] = (snapshot_id, captured_at, states, size)
            self.bytes += size

    def drop(self, key: tuple[Any, ...]) -> None:
        with self.lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.bytes -= old[3]


#: 64 MB of state JSON: about 60 targets of 5,000 statements, or hundreds of small ones
STATE_CACHE = _StateCache(64 << 20)


def _previous(conn: psycopg.Connection, target_id: int) -> deltas.Previous | None:
    """The previous usable snapshot and its states. A state is the base of the next delta only
    if it is the previous snapshot's (after that snapshot was deleted, or the source failed
    there, the next capture is a baseline)."""
    prev = conn.execute(
        "SELECT snapshot_id, captured_at, postmaster_start FROM opscore.snapshots "
        "WHERE target_id = %s AND status <> 'failed' ORDER BY captured_at DESC LIMIT 1",
        (target_id,),
    ).fetchone()
    if prev is None:
        return None
    cached = STATE_CACHE.get(_StateCache.key(conn, target_id), prev[0], prev[1])
    if cached:
        return deltas.Previous(prev[0], prev[1], prev[2], cached)
    # JSON bytes parsed by orjson
    states = {
        source: _state_value(data)
        for source, data in conn.execute(
            "SELECT source, state FROM opscore.snapshot_state WHERE target_id = %s "
            "AND snapshot_id = %s",
            (target_id, prev[0]),
        ).fetchall()
    }
    # no states (lost in a crash: the table is unlogged): a new baseline, reported as such
    return deltas.Previous(prev[0], prev[1], prev[2], states)


def _write(conn: psycopg.Connection, cap: Capture, d: deltas.SnapshotDeltas) -> int:
    """Write a capture and its deltas (computed by model.deltas.snapshot_deltas)."""
    results, prev, new_states = d.results, d.previous, d.states
    status = "partial" if cap.error_count() else "ok"
    stmt_rows = results.get("pg_stat_statements")
    row = conn.execute(
        "INSERT INTO opscore.snapshots (target_id, captured_at, status, prev_snapshot_id, "
        "interval_s, server_version_num, postmaster_start, with_sizes, own_datname, sources, "
        "resets, target_ms, statements) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s) RETURNING snapshot_id",
        (
            cap.target_id,
            cap.captured_at,
            status,
            prev.snapshot_id if prev and prev.states else None,  # else a baseline
            d.interval_s,
            cap.server_version_num,
            cap.postmaster_start,
            cap.with_sizes,
            cap.own_datname,
            _jsonb(cap.sources),
            _jsonb([r.as_dict() for r in d.resets]),
            round(cap.target_ms, 3),
            len(stmt_rows.rows) if stmt_rows else None,
        ),
    ).fetchone()
    assert row is not None
    sid: int = row[0]
    if stmt_rows is not None:
        _write_statements(conn, cap, sid, stmt_rows.rows)
    own_oids = {
        r["datid"] for r in cap.rows.get("pg_stat_database", []) if r["datname"] == cap.own_datname
    }
    if "pg_stat_database" in results:
        rows = []
        for r in results["pg_stat_database"].rows:
            r["own"] = r["datid"] in own_oids
            rows.append([r.get(c) for c in DB_COLUMNS])
        _copy(conn, "snap_databases", DB_COLUMNS, sid, rows)
    if "pg_stat_io" in results:
        rows = [[r.get(c) for c in IO_COLUMNS] for r in results["pg_stat_io"].rows]
        _copy(conn, "snap_io", IO_COLUMNS, sid, rows)
    for name in ("tables", "indexes"):
        spec = columnar.TABLES if name == "tables" else columnar.INDEXES
        res = results.get(name)
        for datname, g in ((res.groups or {}) if res is not None else {}).items():
            if g.block is not None:  # a database's deltas as matrices: written as arrays
                _insert_block(conn, spec, sid, {}, g.block, {"datname": datname})
            elif g.rows:  # computed row by row (a counter beyond int64)
                rows = [{**r, "datname": datname} for r in g.rows]
                _insert_arrays(conn, spec, sid, rows, group="datname")
    for name in JSON_SOURCES:
        if name in results:
            res = results[name]
            single = name in ("pg_stat_wal", "checkpointer", "pg_stat_archiver", "host")
            values: Any = cap.rows[name] if not single else cap.rows[name][0]
            data = {
                "deltas": (res.rows[0] if res.rows else None) if single else res.rows,
                "values": values,
            }
            if name == "settings":
                data = {"values": cap.rows[name]}
            conn.execute(
                "INSERT INTO opscore.snap_cluster (snapshot_id, source, data) VALUES (%s, %s, %s)",
                (sid, name, _jsonb(data)),
            )
    _write_limits(conn, cap, sid)
    # state for the next delta; a source that failed this time restarts from a baseline
    failed = [k for k, v in cap.sources.items() if v.startswith("error")]
    size = 0
    for key, st in new_states.items():
        text = _state_json(st)
        size += len(text)
        conn.execute(
            "INSERT INTO opscore.snapshot_state (target_id, source, snapshot_id, state) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (target_id, source) DO UPDATE "
            "SET snapshot_id = excluded.snapshot_id, state = excluded.state",
            (cap.target_id, key, sid, text),
        )
    if failed:
        conn.execute(
            "DELETE FROM opscore.snapshot_state WHERE target_id = %s AND source = ANY(%s)",
            (cap.target_id, failed),
        )
    # what the next capture would read back: the states written with this snapshot
    kept = {k: v for k, v in new_states.items() if k not in failed}
    cache_key = _StateCache.key(conn, cap.target_id)
    if kept:
        STATE_CACHE.put(cache_key, sid, cap.captured_at, kept, size)
    else:
        STATE_CACHE.drop(cache_key)
    return sid


WRAP_COLUMNS = [c.name for c in SOURCES["wraparound"].columns]
SEQ_COLUMNS = ["datname"] + [c.name for c in SOURCES["sequences"].columns]


def _write_limits(conn: psycopg.Connection, cap: Capture, sid: int) -> None:
    """Gauges the capacity forecasts read (transaction-ID / multixact age, sequences, the
    connection limits in force)."""
    if cap.rows.get("limits"):
        conn.execute(
            "INSERT INTO opscore.snap_cluster (snapshot_id, source, data) VALUES (%s, %s, %s)",
            (sid, "limits", _jsonb({"values": cap.rows["limits"][0]})),
        )
    if "xmin_holders" in cap.rows:  # captured, even empty: none held the horizon then
        conn.execute(
            "INSERT INTO opscore.snap_cluster (snapshot_id, source, data) VALUES (%s, %s, %s)",
            (sid, "xmin_holders", _jsonb({"values": cap.rows["xmin_holders"]})),
        )
    if cap.rows.get("wraparound"):
        rows = [[r.get(c) for c in WRAP_COLUMNS] for r in cap.rows["wraparound"]]
        _copy(conn, "snap_wraparound", WRAP_COLUMNS, sid, rows)
    if cap.rows.get("sequences"):
        rows = [[r.get(c) for c in SEQ_COLUMNS] for r in cap.rows["sequences"]]
        _copy(conn, "snap_sequences", SEQ_COLUMNS, sid, rows)


def _copy(
    conn: psycopg.Connection, table: str, cols: list[str], sid: int, rows: list[list[Any]]
) -> None:
    if not rows:
        return
    names = ", ".join(["snapshot_id", *cols])
    with conn.cursor() as cur, cur.copy(f"COPY opscore.{table} ({names}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row([sid, *r])


#: the stage's column type for a columnar type: numeric counters arrive as floats (model.deltas
#: converts them) and go in as float8, cast back to numeric by the INSERT
_STAGE_TYPE = {"numeric": "float8"}


def _stage(
    conn: psycopg.Connection, c: columnar.Columnar, extra: list[str]
) -> tuple[str, list[str], list[str]]:
    """The session's temporary stage of a columnar table: its name, fields and COPY types."""
    stage = f"_opscore_{c.table}"
    types = [*("text" for _ in extra), *(_STAGE_TYPE.get(c.types[x], c.types[x]) for x in c.cols)]
    fields = [*extra, *c.cols]
    defs = ", ".join(f"{x} {t}" for x, t in zip(fields, types, strict=True))
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({defs}) ON COMMIT DELETE ROWS")
    return stage, fields, types


def _aggregate(
    conn: psycopg.Connection, c: columnar.Columnar, sid: int, stage: str, extra: list[str]
) -> None:
    """The staged rows into the snapshot's columnar row(s), the stage emptied.

    No ORDER BY in the aggregates: element i of every array must belong to the same row, and
    it does without one, as one aggregate step feeds each input row to all the aggregates of
    its group in turn (the arrays' order itself means nothing to the readers, which unnest
    them together). With an ORDER BY each, PostgreSQL before 16 sorted the stage once per
    column: 27 sorts, ~55 % of the statements' INSERT on PostgreSQL 15. A zero counter is
    stored as NULL (free in an array's null bitmap; readers COALESCE): NULLIF, as a block
    stages its zeros as 0."""
    counters = set(c.counters)

    def agg(x: str) -> str:
        value = f"NULLIF({x}, 0)" if x in counters else x
        cast = f"::{c.types[x]}[]" if c.types.get(x) in _STAGE_TYPE else ""
        return f"array_agg({value}){cast}"

    groups = "".join(g + ", " for g in extra)
    conn.execute(
        f"INSERT INTO opscore.{c.table} (snapshot_id, {groups}{', '.join(c.cols)}) "
        f"SELECT %s, {groups}{', '.join(agg(x) for x in c.cols)} FROM {stage}"
        + (f" GROUP BY {', '.join(extra)}" if extra else ""),
        (sid,),
    )
    conn.execute(f"DELETE FROM {stage}")  # several snapshots can share one transaction


def _insert_arrays(
    conn: psycopg.Connection,
    c: columnar.Columnar,
    sid: int,
    rows: list[dict[str, Any]],
    group: str | None = None,
) -> None:
    """The columnar row(s) of a snapshot (one array per column, one row per ``group`` value),
    built by the server: the rows go in by binary COPY to a temporary table and ``array_agg``
    makes the arrays (adapting thousands of Python lists element by element was most of the
    write; binary COPY costs this process ~5x less than text for 5,000 rows of 27 numbers, and
    the server ~40 % less)."""
    if not rows:
        return
    extra = [group] if group else []
    stage, fields, types = _stage(conn, c, extra)
    get = None
    if len(fields) > 1 and all(x in rows[0] for x in fields):
        get = itemgetter(*fields)  # rows of one shape (compute's): a C-level getter
    copy_sql = f"COPY {stage} ({', '.join(fields)}) FROM STDIN (FORMAT BINARY)"
    with conn.cursor() as cur, cur.copy(copy_sql) as cp:
        cp.set_types(types)
        for r in rows:
            try:
                values = get(r) if get is not None else None
            except KeyError:  # a row of another shape
                values = None
            if values is None:
                values = (*(r[g] for g in extra), *(r.get(x) for x in c.cols))
            cp.write_row(values)
    _aggregate(conn, c, sid, stage, extra)


def _insert_block(
    conn: psycopg.Connection, c: columnar.Columnar, sid: int, keys: dict[str, np.ndarray],
    block: deltas.DeltaBlock, group: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """A DeltaBlock's columnar row in one INSERT whose parameters are the arrays themselves:
    the counters built whole by numpy in PostgreSQL's binary array form (no Python object per
    value, no stage, COPY or aggregate: for 5,000 statements of 27 counters that path was ~20
    ms, most of it the server parsing the COPY and aggregating it again), the other columns
    (``keys`` given, else the captured rows' keys and gauges: names, timestamps, sizes) as
    lists adapted by psycopg, and the ``group`` columns (datname) as values. The same row as
    ``_insert_arrays`` stores (zero counters NULL, numeric cast from float8, tested)."""
    if not len(block.rows):
        return
    columns: dict[str, Any] = {**keys}
    columns.update(zip(block.int_cols, block.ints.T, strict=True))
    columns.update(zip(block.float_cols, block.floats.T, strict=True))
    counters = set(c.counters)
    group = group or {}
    params: list[Any] = [sid, *group.values()]
    marks = ["%s"] * len(params)
    for x in c.cols:
        typ = c.types[x]
        if x in columns:
            elem = _STAGE_TYPE.get(typ, typ)
            params.append(binarray.array(np.asarray(columns[x]), elem, x in counters))
            marks.append(f"%b::{typ}[]" if typ != elem else "%b")
            continue
        values = list(map(itemgetter(x), block.rows))
        arr = binarray.value_array(values, typ, conn.info.encoding)
        params.append(values if arr is None else arr)  # another type: psycopg adapts it
        marks.append(f"%s::{typ}[]" if arr is None else "%b")
    names = [*group, *c.cols]
    conn.execute(
        f"INSERT INTO opscore.{c.table} (snapshot_id, {', '.join(names)}) "
        f"VALUES ({', '.join(marks)})",
        params,
    )


def _write_statements(
    conn: psycopg.Connection, cap: Capture, sid: int, rows: Sequence[dict[str, Any]]
) -> None:
    own_oids = {
        r["datid"] for r in cap.rows.get("pg_stat_database", []) if r["datname"] == cap.own_datname
    }
    if cap.texts:
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _opscore_texts (target_id int, queryid int8, "
            "dbid oid, userid oid, toplevel bool, datname text, username text, own bool, "
            "query text) ON COMMIT DELETE ROWS"
        )
        cols = [
            "target_id",
            "queryid",
            "dbid",
            "userid",
            "toplevel",
            "datname",
            "username",
            "own",
            "query",
        ]
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY _opscore_texts ({', '.join(cols)}) FROM STDIN") as cp,
        ):
            for t in cap.texts:
                own = t["dbid"] in own_oids or is_own_sql(t["query"])
                cp.write_row(
                    [
                        cap.target_id,
                        t["queryid"],
                        t["dbid"],
                        t["userid"],
                        t["toplevel"],
                        t["datname"],
                        t["username"],
                        own,
                        t["query"],
                    ]
                )
        inserted = conn.execute(
            f"INSERT INTO opscore.statements ({', '.join(cols)}) "
            f"SELECT {', '.join(cols)} FROM _opscore_texts "
            "ON CONFLICT (target_id, queryid, dbid, userid, toplevel) DO NOTHING "
            "RETURNING queryid, dbid, userid, toplevel, stmt_id"
        ).fetchall()
    if cap.stmt_ids is None:
        ids = dict(known_statements(conn, cap.target_id))  # a copy: added to below
    else:  # what the repository knew before the capture, plus what was just inserted
        ids = dict(cap.stmt_ids)
        if cap.texts:
            ids.update({(r[0], r[1], r[2], r[3]): r[4] for r in inserted})
    block = rows.block if isinstance(rows, deltas.BlockRows) else None
    kept = block.rows if block is not None else rows
    stmt_ids = []
    for r in kept:
        key = (r["queryid"], r["dbid"], r["userid"], r["toplevel"])
        stmt_id = ids.get(key)
        if stmt_id is None:  # text not readable (e.g. texts file garbage-collected): keep numbers
            conn.execute(
                "INSERT INTO opscore.statements (target_id, queryid, dbid, userid, toplevel, own) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (cap.target_id, *key, r["dbid"] in own_oids),
            )
            stmt_id = conn.execute(
                "SELECT stmt_id FROM opscore.statements WHERE target_id = %s AND queryid = %s "
                "AND dbid = %s AND userid = %s AND toplevel = %s",
                (cap.target_id, *key),
            ).fetchone()[0]  # type: ignore[index]
            ids[key] = stmt_id
        stmt_ids.append(stmt_id)
    if block is not None:
        keys = {"stmt_id": np.array(stmt_ids, dtype=np.int64)}
        _insert_block(conn, columnar.STATEMENTS, sid, keys, block)
        return
    for r, stmt_id in zip(kept, stmt_ids, strict=True):
        r["stmt_id"] = stmt_id
    _insert_arrays(conn, columnar.STATEMENTS, sid, list(kept))
