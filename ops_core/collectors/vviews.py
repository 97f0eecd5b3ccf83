"""Oracle V$ view equivalents read live from a target's catalog views, with Oracle's column
names (upper case) where PostgreSQL has the figure, and the PostgreSQL name where Oracle has
none. Read-only monitoring SQL; version differences are chosen here (pg_stat_checkpointer from
17, per-backend I/O and WAL from 18)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg
from psycopg.rows import dict_row

SESSION = """
SELECT /* opscore */ a.pid AS "SID",
       extract(epoch FROM a.backend_start)::bigint AS "SERIAL#",
       a.usename AS "USERNAME",
       CASE WHEN a.state = 'active' THEN 'ACTIVE' ELSE 'INACTIVE' END AS "STATUS",
       a.datname AS "SCHEMANAME",
       coalesce(a.client_hostname, a.client_addr::text) AS "MACHINE",
       a.client_port AS "PORT",
       a.application_name AS "PROGRAM",
       CASE WHEN a.backend_type = 'client backend' THEN 'USER' ELSE 'BACKGROUND' END AS "TYPE",
       a.query_id AS "SQL_ID",
       a.query_start AS "SQL_EXEC_START",
       a.backend_start AS "LOGON_TIME",
       coalesce(a.wait_event, CASE WHEN a.state = 'active' THEN 'ON CPU' END) AS "EVENT",
       a.wait_event_type AS "WAIT_CLASS",
       extract(epoch FROM now() - a.state_change)::float8 AS "SECONDS_IN_STATE",
       (pg_blocking_pids(a.pid))[1] AS "BLOCKING_SESSION",
       a.state AS "STATE",
       a.backend_type AS "BACKEND_TYPE",
       a.xact_start AS "XACT_START",
       left(a.query, %(text_max)s) AS "SQL_TEXT"
  FROM pg_stat_activity a
 WHERE a.pid <> pg_backend_pid()
   AND (%(include_opscore)s OR coalesce(a.application_name, '') NOT LIKE 'opscore%%')
 ORDER BY a.state = 'active' DESC, a.pid
"""

SQL = """
SELECT /* opscore */ s.queryid AS "SQL_ID",
       left(s.query, %(text_max)s) AS "SQL_TEXT",
       r.rolname AS "PARSING_USER_NAME",
       d.datname AS "PARSING_SCHEMA_NAME",
       s.calls AS "EXECUTIONS",
       s.plans AS "PARSE_CALLS",
       (s.total_exec_time * 1000)::bigint AS "ELAPSED_TIME",
       (s.mean_exec_time * 1000)::float8 AS "AVG_ELAPSED_TIME",
       s.rows AS "ROWS_PROCESSED",
       s.shared_blks_hit + s.shared_blks_read AS "BUFFER_GETS",
       s.shared_blks_read AS "DISK_READS",
       s.shared_blks_dirtied AS "DIRECT_WRITES",
       s.temp_blks_written AS "TEMP_BLKS_WRITTEN",
       s.wal_bytes AS "REDO_SIZE"
  FROM pg_stat_statements s
  LEFT JOIN pg_roles r ON r.oid = s.userid
  LEFT JOIN pg_database d ON d.oid = s.dbid
 ORDER BY s.total_exec_time DESC
 LIMIT %(limit)s
"""

PARAMETER = """
SELECT /* opscore */ name AS "NAME",
       setting || coalesce(' ' || unit, '') AS "VALUE",
       current_setting(name) AS "DISPLAY_VALUE",
       vartype AS "TYPE",
       (source = 'default') AS "ISDEFAULT",
       (context IN ('user', 'superuser')) AS "ISSES_MODIFIABLE",
       CASE context WHEN 'postmaster' THEN 'FALSE' WHEN 'internal' THEN 'FALSE'
            ELSE 'IMMEDIATE' END AS "ISSYS_MODIFIABLE",
       pending_restart AS "PENDING_RESTART",
       source AS "SOURCE",
       category AS "CATEGORY",
       short_desc AS "DESCRIPTION"
  FROM pg_settings
 WHERE (%(name)s::text IS NULL OR name ILIKE %(name)s)
 ORDER BY name
"""

TRANSACTION = """
SELECT /* opscore */ a.pid AS "SID", a.usename AS "USERNAME", a.datname AS "DATABASE",
       a.application_name AS "PROGRAM", a.xact_start AS "START_TIME",
       extract(epoch FROM now() - a.xact_start)::float8 AS "SECONDS",
       a.backend_xid::text AS "XID", age(a.backend_xid) AS "XID_AGE",
       age(a.backend_xmin) AS "XMIN_AGE",
       CASE WHEN a.backend_xid IS NULL THEN 'READ ONLY' ELSE 'WRITE' END AS "KIND",
       a.state AS "STATUS", left(a.query, %(text_max)s) AS "SQL_TEXT"
  FROM pg_stat_activity a
 WHERE a.xact_start IS NOT NULL AND a.pid <> pg_backend_pid()
   AND (%(include_opscore)s OR coalesce(a.application_name, '') NOT LIKE 'opscore%%')
 ORDER BY a.xact_start
"""

#: V$SYSSTAT: (name, class, expression) per source; summed over databases where it applies
_DB_STATS = (
    ("user commits", "User", "sum(xact_commit)"),
    ("user rollbacks", "User", "sum(xact_rollback)"),
    ("session logical reads", "Cache", "sum(blks_hit + blks_read)"),
    ("physical reads", "Cache", "sum(blks_read)"),
    ("buffer hits", "Cache", "sum(blks_hit)"),
    ("rows returned", "SQL", "sum(tup_returned)"),
    ("rows fetched", "SQL", "sum(tup_fetched)"),
    ("rows inserted", "SQL", "sum(tup_inserted)"),
    ("rows updated", "SQL", "sum(tup_updated)"),
    ("rows deleted", "SQL", "sum(tup_deleted)"),
    ("temp files", "SQL", "sum(temp_files)"),
    ("temp bytes", "SQL", "sum(temp_bytes)"),
    ("deadlocks", "Enqueue", "sum(deadlocks)"),
    ("recovery conflicts", "Enqueue", "sum(conflicts)"),
    ("physical read time ms", "Cache", "sum(blk_read_time)"),
    ("physical write time ms", "Cache", "sum(blk_write_time)"),
)
_WAL_STATS = (
    ("redo entries", "Redo", "wal_records"),
    ("redo size", "Redo", "wal_bytes"),
    ("redo full page images", "Redo", "wal_fpi"),
    ("redo buffers full", "Redo", "wal_buffers_full"),
)
_BGWRITER = (
    ("checkpoints timed", "Checkpoint", "checkpoints_timed"),
    ("checkpoints requested", "Checkpoint", "checkpoints_req"),
    ("checkpoint buffers written", "Checkpoint", "buffers_checkpoint"),
    ("background writer buffers written", "Cache", "buffers_clean"),
)
_CHECKPOINTER = (
    ("checkpoints timed", "Checkpoint", "num_timed"),
    ("checkpoints requested", "Checkpoint", "num_requested"),
    ("checkpoint buffers written", "Checkpoint", "buffers_written"),
)


def _select(source: str, stats: tuple[tuple[str, str, str], ...], view: str) -> str:
    parts = [
        f"SELECT /* opscore */ '{name}'::text AS name, '{cls}'::text AS class, "
        f"({expr})::float8 AS value, '{view}'::text AS source FROM {source}"
        for name, cls, expr in stats
    ]
    return " UNION ALL ".join(parts)


def sysstat_sql(version_num: int) -> str:
    """V$SYSSTAT for this server: name, class, value, source (the pg view)."""
    parts = [_select("pg_stat_database", _DB_STATS, "pg_stat_database")]
    if version_num >= 170000:
        parts.append(_select("pg_stat_checkpointer", _CHECKPOINTER, "pg_stat_checkpointer"))
        parts.append(
            _select(
                "pg_stat_bgwriter",
                (("background writer buffers written", "Cache", "buffers_clean"),),
                "pg_stat_bgwriter",
            )
        )
    else:
        parts.append(_select("pg_stat_bgwriter", _BGWRITER, "pg_stat_bgwriter"))
    parts.append(_select("pg_stat_wal", _WAL_STATS, "pg_stat_wal"))  # same columns 14..18
    parts.append(
        "SELECT /* opscore */ 'logons current'::text, 'User'::text, count(*)::float8, "
        "'pg_stat_activity'::text FROM pg_stat_activity WHERE backend_type = 'client backend'"
    )
    return " UNION ALL ".join(parts)


#: PostgreSQL 18: per-backend I/O and WAL counters (pg_stat_get_backend_io/_wal)
SESSTAT_18 = """
SELECT /* opscore */ a.pid AS sid, s.name, s.value, s.source
  FROM pg_stat_activity a,
  LATERAL (
    SELECT 'physical reads'::text AS name, sum(io.reads)::float8 AS value,
           'pg_stat_get_backend_io'::text AS source
      FROM pg_stat_get_backend_io(a.pid) io
    UNION ALL
    SELECT 'physical writes', sum(io.writes)::float8, 'pg_stat_get_backend_io'
      FROM pg_stat_get_backend_io(a.pid) io
    UNION ALL
    SELECT 'buffer hits', sum(io.hits)::float8, 'pg_stat_get_backend_io'
      FROM pg_stat_get_backend_io(a.pid) io
    UNION ALL
    SELECT 'redo size', w.wal_bytes::float8, 'pg_stat_get_backend_wal'
      FROM pg_stat_get_backend_wal(a.pid) w
    UNION ALL
    SELECT 'redo entries', w.wal_records::float8, 'pg_stat_get_backend_wal'
      FROM pg_stat_get_backend_wal(a.pid) w
  ) s
 WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
   AND (%(pid)s::int IS NULL OR a.pid = %(pid)s)
   AND (%(include_opscore)s OR coalesce(a.application_name, '') NOT LIKE 'opscore%%')
"""

SESSTAT_COMMON = """
SELECT /* opscore */ a.pid AS sid, 'session connect time s'::text AS name,
       extract(epoch FROM now() - a.backend_start)::float8 AS value,
       'pg_stat_activity'::text AS source
  FROM pg_stat_activity a
 WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
   AND (%(pid)s::int IS NULL OR a.pid = %(pid)s)
   AND (%(include_opscore)s OR coalesce(a.application_name, '') NOT LIKE 'opscore%%')
"""


def frame(
    conn: psycopg.Connection, query: str, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params or {})  # type: ignore[arg-type]
        rows = cur.fetchall()
        names = [d.name for d in cur.description or []]
    return pd.DataFrame(rows, columns=names)


def has_pgss(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT /* opscore */ 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
    ).fetchone()
    return row is not None
