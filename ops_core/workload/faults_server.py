"""Fault injectors whose problem is server-wide: checkpoint pressure (ALTER SYSTEM), a
connection storm (every user of the server feels it) and sequential I/O with a small
shared_buffers (a restart). They refuse server-wide changes without
``allow_server_changes=True``; the tests run them on a throw-away embedded server.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ..errors import NotSupported
from ..targets.embedded import EmbeddedServer
from .fault_base import Fault, ServerChangesNotAllowed
from .sessions import admin_connect


# ------------------------------------------------------------------------------ checkpoints
def checkpoint_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Checkpoints done so far: ``timed`` and ``requested`` (pg_stat_checkpointer from 17,
    pg_stat_bgwriter before)."""
    v = conn.info.server_version
    if v >= 170000:
        q = "SELECT num_timed, num_requested FROM pg_stat_checkpointer"
    else:
        q = "SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter"
    row = conn.execute(q).fetchone()
    assert row is not None
    return {"timed": int(row[0]), "requested": int(row[1])}


class CheckpointPressure(Fault):
    """``max_wal_size`` lowered server-wide (ALTER SYSTEM + reload) while sessions rewrite a
    table: WAL fills up and forces requested checkpoints back to back. Server-wide: needs
    ``allow_server_changes=True``; the setting is restored at exit."""

    name = "checkpoint_pressure"
    description = "small max_wal_size with write-heavy load: requested checkpoints"
    server_wide = True
    table = "demo.order_audit"
    statement = (
        "UPDATE demo.order_audit SET payload = repeat(md5(random()::text), 8), "
        "updated_at = now() WHERE id %% %s = %s"
    )

    def __init__(
        self,
        dsn: str,
        *,
        sessions: int = 2,
        max_wal_size: str = "32MB",
        rows: int = 40_000,
        **kw: Any,
    ):
        super().__init__(dsn, **kw)
        self.sessions, self.max_wal_size, self.rows = sessions, max_wal_size, rows

    def start(self) -> None:
        admin = self.sql_admin
        self.own_table(
            self.table,
            "CREATE TABLE demo.order_audit (id bigint PRIMARY KEY, order_id bigint NOT NULL, "
            "payload text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())",
        )
        admin.execute(
            "INSERT INTO demo.order_audit (id, order_id, payload) "
            "SELECT g, g, repeat(md5(g::text), 8) FROM generate_series(1, %s) g",
            (self.rows,),
        )
        self.info.statements.append(self.statement.replace("%%", "%"))
        self.before = checkpoint_counts(admin)
        self.alter_system("max_wal_size", self.max_wal_size)
        for i in range(self.sessions):
            conn = self.session("writer")
            self.loop("writer", conn, lambda c, i=i: c.execute(self.statement, (self.sessions, i)))


# ------------------------------------------------------------------------------ storm
class ConnectionStorm(Fault):
    """Many idle sessions opened at once, up to near ``max_connections`` (always leaving the
    superuser-reserved slots and ``reserve`` more free). Filling the server (``sessions``
    None) affects every user of it and needs ``allow_server_changes=True``."""

    name = "connection_storm"
    description = "a connection storm near max_connections"
    server_wide_when = "when filling the server (no number of sessions given)"

    def __init__(self, dsn: str, *, sessions: int | None = None, reserve: int = 10, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.reserve = sessions, max(1, reserve)
        self.room: dict[str, int] = {}

    def require_server_changes_if_needed(self) -> None:
        if self.sessions is None and not self.allow_server_changes:
            raise ServerChangesNotAllowed(
                "Filling the server up to max_connections affects every user of it.",
                "Give a number of sessions, or allow_server_changes=True "
                "(CLI: --allow-server-changes) on a server you own.",
            )

    def start(self) -> None:
        row = self.sql_admin.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int,"
            " coalesce(current_setting('reserved_connections', true), '0')::int,"
            " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        ).fetchone()
        assert row is not None
        max_conn, su_reserved, reserved, in_use = (int(v) for v in row)
        room = max_conn - su_reserved - reserved - in_use - self.reserve
        self.room = {
            "max_connections": max_conn,
            "superuser_reserved_connections": su_reserved,
            "reserved_connections": reserved,
            "in_use_before": in_use,
            "reserve": self.reserve,
            "room": max(0, room),
        }
        want = room if self.sessions is None else min(self.sessions, room)
        if want <= 0:
            raise NotSupported(
                f"No room for a connection storm: {in_use} of {max_conn} connections in use.",
                "Lower --reserve or try when the server is quieter.",
            )
        if self.sessions is not None and self.sessions > room:
            self.info.notes.append(f"capped at {room} sessions (asked {self.sessions})")
        for _ in range(want):
            self.session("idle").execute("SELECT 1")
        self.info.notes.append(
            f"opened {want} sessions: {in_use + want} of {max_conn} connections in use"
        )
        self.info.statements.append("SELECT 1")


# ------------------------------------------------------------------------------ seq I/O
class SeqScanIO(Fault):
    """Full scans of a table larger than the buffer cache.

    With ``server`` (an :class:`EmbeddedServer` you own, and ``allow_server_changes``),
    shared_buffers is really lowered (ALTER SYSTEM + restart) and restored (+ restart) at
    exit. Otherwise shared_buffers is left alone and the table is sized past it (1.25x, at
    most ``max_table_mb``), so each scan reads most of the table again (shared_blks_read);
    ``info.notes`` says which it did.
    """

    name = "seq_scan_io"
    description = "heavy sequential I/O on a table larger than the buffer cache"
    server_wide_when = "when given an embedded server to restart with a small shared_buffers"
    table = "demo.order_archive"
    statement = (
        "SELECT date_trunc('month', created_at) AS month, count(*), sum(amount) "
        "FROM demo.order_archive GROUP BY 1 ORDER BY 1"
    )

    def __init__(
        self,
        dsn: str,
        *,
        server: EmbeddedServer | None = None,
        shared_buffers: str = "16MB",
        table_mb: int | None = None,
        max_table_mb: int = 256,
        sessions: int = 2,
        **kw: Any,
    ):
        super().__init__(dsn, **kw)
        self.server, self.shared_buffers = server, shared_buffers
        self.table_mb, self.max_table_mb, self.sessions = table_mb, max_table_mb, sessions

    def _restart(self) -> None:
        assert self.server is not None
        if self.admin is not None:
            self.admin.close()
        self.server.stop()
        self.server.start()
        self.admin = admin_connect(self.dsn)

    def require_server_changes_if_needed(self) -> None:
        if self.server is not None and not self.allow_server_changes:
            raise ServerChangesNotAllowed(
                "Lowering shared_buffers restarts the server.",
                "Pass allow_server_changes=True (CLI: --allow-server-changes) for a server "
                "you own, or no server to emulate with a table larger than the cache.",
            )

    def start(self) -> None:
        admin = self.sql_admin
        if self.server is not None:
            row = admin.execute("SELECT current_setting('data_directory')").fetchone()
            if row is None or str(row[0]) != str(self.server.pgdata):
                raise NotSupported(
                    "The DSN does not point at the embedded server given to restart.",
                    "Pass the EmbeddedServer that serves this DSN, or no server.",
                )
            self.undo("restarted the server", self._restart)  # runs after the reset below
            self.alter_system("shared_buffers", self.shared_buffers)
            self._restart()
            admin = self.sql_admin
        row = admin.execute(
            "SELECT setting::bigint * current_setting('block_size')::bigint / 1048576 "
            "FROM pg_settings WHERE name = 'shared_buffers'"
        ).fetchone()
        assert row is not None
        sb_mb = int(row[0])
        size = self.table_mb or (2 * sb_mb if self.server else max(24, int(sb_mb * 1.25)))
        if size > self.max_table_mb:
            size = self.max_table_mb
            self.info.notes.append(
                f"table capped at {size} MB: smaller than shared_buffers ({sb_mb} MB), so "
                "scans may be served from the cache"
            )
        if self.server is None:
            self.info.notes.append(
                f"shared_buffers left at {sb_mb} MB (changing it needs a restart); emulated "
                f"with a table of ~{size} MB, larger than the buffer cache"
            )
        rows = size * 1024 * 1024 // 200
        # CREATE TABLE AS writes through a small ring of buffers (INSERT ... SELECT would
        # leave the whole table cached): the scans start with the table mostly not in cache
        self.own_table(
            self.table,
            sql.SQL(
                "CREATE TABLE demo.order_archive AS SELECT g::bigint AS id,"
                " (1 + g % 5000)::int AS customer_id, ((g % 500) + 0.99)::numeric(12,2) AS amount,"
                " now() - (g % 1000) * interval '1 day' AS created_at,"
                " repeat(md5(g::text), 4) AS note FROM generate_series(1, {}) g"
            ).format(sql.Literal(rows)),
        )
        admin.execute("VACUUM ANALYZE demo.order_archive")
        row = admin.execute("SELECT pg_table_size('demo.order_archive') / 1048576").fetchone()
        self.info.notes.append(f"demo.order_archive is {row[0] if row else '?'} MB")
        self.info.statements.append(self.statement)
        for _ in range(self.sessions):
            conn = self.session("worker")
            self.loop("worker", conn, lambda c: c.execute(self.statement).fetchall())
