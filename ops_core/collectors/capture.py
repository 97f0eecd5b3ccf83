"""Target side of a snapshot: read every source in one read-only REPEATABLE READ transaction.

A failing source becomes an error of this snapshot; the others are still read. Object
statistics of the other databases of the cluster are read afterwards, one database at a
time (never more than one connection to the target at once), each in its own short read-only
transaction. Nothing is ever written to the target and its
statistics are never reset.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from ..config import Settings
from ..errors import OpsCoreError
from ..model.capture import Capture, StmtKey  # the shared record (the repository writes it)
from ..targets import connection
from . import catalog, host
from .scrub import scrub

CLUSTER_SOURCES = [
    "pg_stat_database",
    "pg_stat_io",
    "pg_stat_wal",
    "checkpointer",
    "pg_stat_archiver",
    "replication",
    "replication_slots",
    "settings",
    "wraparound",
    "limits",
    "xmin_holders",
]


#: sources read in binary format (numbers only, thousands of rows)
BINARY_SOURCES = frozenset({"pg_stat_statements"})


@dataclass
class CaptureOptions:
    with_sizes: bool = True
    max_relations: int = 2000
    databases: list[str] = field(default_factory=list)  # empty: every connectable database
    exclude_databases: list[str] = field(default_factory=list)
    exclude_schemas: list[str] = field(default_factory=list)
    include_opscore: bool = False
    repository_identity: tuple[Any, ...] | None = None  # (postmaster start, port) of repository
    repository_database: str | None = None
    local_host: bool = False

    @classmethod
    def from_settings(cls, s: Settings, **kw: Any) -> CaptureOptions:
        return cls(
            max_relations=s.snapshot_max_relations,
            databases=list(s.snapshot_databases),
            exclude_databases=list(s.snapshot_exclude_databases),
            exclude_schemas=list(s.snapshot_exclude_schemas),
            include_opscore=s.include_opscore_activity,
            **kw,
        )


class _Reader:
    """Runs catalog queries in the open read-only transaction of ``conn``, timing target work.

    No savepoints (their SAVEPOINT/RELEASE statements would pollute the target's
    pg_stat_statements): a failing source rolls the transaction back, is recorded as an error
    of the snapshot, and the next source runs in a fresh transaction.
    """

    def __init__(self, conn: psycopg.Connection, cap: Capture, version_num: int, idents: dict):
        self.conn, self.cap, self.version_num, self.idents = conn, cap, version_num, idents

    def begin(self) -> None:
        if self.version_num >= 150000:
            # one consistent statistics snapshot for the whole transaction
            self.conn.execute("SET LOCAL /* opscore */ stats_fetch_consistency = snapshot")

    def run(
        self, source: str, params: dict[str, Any] | None = None, label: str | None = None
    ) -> list[dict[str, Any]] | None:
        label = label or source
        q = catalog.query(source, self.version_num, **self.idents)
        if q is None:
            first = catalog.min_version(source) or 0
            self.cap.sources[label] = (
                f"not available on PostgreSQL {self.version_num // 10000} (needs {first // 10000}+)"
            )
            return None
        t0 = time.perf_counter()
        try:
            # thousands of rows of numbers: binary results parse ~15 % faster, same types
            binary = source in BINARY_SOURCES
            with self.conn.cursor(row_factory=dict_row, binary=binary) as cur:
                cur.execute(q, params or {})
                rows = cur.fetchall()
        except psycopg.Error as exc:
            self.cap.sources[label] = f"error: {str(exc).strip().splitlines()[0]}"
            if self.conn.closed or self.conn.broken:
                raise
            self.conn.rollback()
            self.begin()
            return None
        finally:
            self.cap.target_ms += (time.perf_counter() - t0) * 1000
        self.cap.sources[label] = "ok"
        return rows


def _object_params(opts: CaptureOptions, with_sizes: bool) -> dict[str, Any]:
    return {
        "with_sizes": with_sizes,
        "exclude_schemas": opts.exclude_schemas,
        "max_relations": opts.max_relations,
    }


def _read_objects(reader: _Reader, datname: str, opts: CaptureOptions, cap: Capture) -> None:
    params = _object_params(opts, cap.with_sizes)
    for src in ("tables", "indexes", "sequences"):
        rows = reader.run(src, params, label=f"{src}@{datname}")
        if rows is not None:
            for r in rows:
                r["datname"] = datname
            cap.rows.setdefault(src, []).extend(rows)


def _databases(conn: psycopg.Connection, opts: CaptureOptions, cap: Capture) -> list[str]:
    """Databases whose object statistics are captured, after the configured filters."""
    # the OID form of has_database_privilege: this transaction's snapshot can still list a
    # database another session has dropped since, and the by-name form raises "does not
    # exist" (aborting the whole capture) where the OID form answers NULL. datconnlimit = -2
    # marks a database a DROP DATABASE was interrupted in (PostgreSQL 15.4+/16): nobody can
    # connect to it, so it is not captured (it made every snapshot of the server partial)
    rows = conn.execute(
        "SELECT /* opscore */ datname::text FROM pg_database WHERE datallowconn "
        "AND NOT datistemplate AND datconnlimit <> -2 "
        "AND has_database_privilege(oid, 'CONNECT') IS TRUE ORDER BY 1"
    ).fetchall()
    available = [r[0] for r in rows]
    chosen = available
    if opts.databases:
        for name in opts.databases:
            if name not in available:
                cap.sources[f"tables@{name}"] = (
                    "error: database not found or not connectable (snapshot_databases)"
                )
        chosen = [d for d in available if d in opts.databases]
    chosen = [d for d in chosen if d not in opts.exclude_databases]
    if cap.own_datname and not opts.include_opscore:
        chosen = [d for d in chosen if d != cap.own_datname]
    return chosen


def _open(dsn: str) -> psycopg.Connection:
    """A monitoring connection whose transactions are REPEATABLE READ and read-only."""
    conn = connection.connect(dsn, autocommit=False)
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    return conn


def capture(
    target_id: int, dsn: str, opts: CaptureOptions, known: set[StmtKey] | None = None
) -> Capture:
    """Read a snapshot of the target at ``dsn``. Never raises for the target's sake: a target
    that is down or times out gives a Capture with ``failed`` set to the reason."""
    cap = Capture(target_id=target_id, with_sizes=opts.with_sizes)
    known = known or set()
    try:
        conn = _open(dsn)
    except OpsCoreError as exc:
        cap.failed = exc.message
        return cap
    try:
        extra = _main_transaction(conn, cap, opts, known)
        conn.commit()
    except psycopg.Error as exc:  # lost the connection, or a timeout outside a source
        cap.failed = f"capture aborted: {str(exc).strip().splitlines()[0]}"
        return cap
    finally:
        conn.close()
    for datname in extra:
        if datname == cap.datname:
            continue
        try:
            with _open(make_conninfo(dsn, dbname=datname)) as dconn:
                reader = _Reader(dconn, cap, cap.server_version_num or 0, {})
                reader.begin()
                _read_objects(reader, datname, opts, cap)
                dconn.commit()
        except (OpsCoreError, psycopg.Error) as exc:
            msg = exc.message if isinstance(exc, OpsCoreError) else str(exc).strip()
            cap.sources[f"tables@{datname}"] = f"error: {msg.splitlines()[0]}"
    return cap


def _main_transaction(
    conn: psycopg.Connection, cap: Capture, opts: CaptureOptions, known: set[StmtKey]
) -> list[str]:
    """Cluster-wide sources and the DSN database's objects; returns the databases whose
    object statistics are to be read (after the filters)."""
    t0 = time.perf_counter()
    with conn.cursor(row_factory=dict_row) as cur:
        info = cur.execute(catalog.query("cluster_info", 140000)).fetchone()  # type: ignore[arg-type]
    cap.target_ms += (time.perf_counter() - t0) * 1000
    assert info is not None
    version = info["server_version_num"]
    cap.captured_at = info["captured_at"]
    cap.server_version_num = version
    cap.postmaster_start = info["postmaster_start"]
    cap.datname = info["datname"]
    if opts.repository_identity == (info["postmaster_start"], info["port"]):
        cap.own_datname = opts.repository_database
    idents: dict[str, sql.Composable] = {}
    if info["pgss_schema"]:
        idents = {
            "pgss": sql.Identifier(info["pgss_schema"], "pg_stat_statements"),
            "pgss_info": sql.Identifier(info["pgss_schema"], "pg_stat_statements_info"),
        }
    reader = _Reader(conn, cap, version, idents)
    reader.begin()
    if idents:
        _read_statements(reader, cap, known)
    else:
        for src in ("pg_stat_statements", "pg_stat_statements_info"):
            cap.sources[src] = (
                f"not available: extension pg_stat_statements is not created in "
                f"database {cap.datname}"
            )
    for src in CLUSTER_SOURCES:
        rows = reader.run(src, {"with_sizes": cap.with_sizes})
        if rows is not None:
            if src == "settings":  # primary_conninfo and the like may carry a password
                for r in rows:
                    r["setting"] = scrub(r["setting"])
            cap.rows[src] = rows
    chosen = _databases(conn, opts, cap)
    if cap.datname in chosen:
        _read_objects(reader, cap.datname or "", opts, cap)
    if opts.local_host:
        data_dir = conn.execute(
            "SELECT /* opscore */ CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE') "
            "THEN current_setting('data_directory') END"
        ).fetchone()[0]  # type: ignore[index]
        cap.rows["host"] = [host.sample(data_dir)]
        cap.sources["host"] = "ok"
    return chosen


def _read_statements(reader: _Reader, cap: Capture, known: set[StmtKey]) -> None:
    rows = reader.run("pg_stat_statements")
    if rows is None:
        return
    cap.rows["pg_stat_statements"] = rows
    info = reader.run("pg_stat_statements_info")
    if info is not None:
        cap.rows["pg_stat_statements_info"] = info
    missing = {(r["queryid"], r["dbid"], r["userid"], r["toplevel"]) for r in rows} - known
    if not missing:
        return
    texts = reader.run("statement_texts", {"queryids": sorted({k[0] for k in missing})})
    if texts:
        # scrubbed before anything is stored: utility statements are kept verbatim by
        # pg_stat_statements (ALTER ROLE ... PASSWORD '...')
        cap.texts = [
            {**t, "query": scrub(t["query"])}
            for t in texts
            if (t["queryid"], t["dbid"], t["userid"], t["toplevel"]) in missing
        ]
