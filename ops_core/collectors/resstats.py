"""Live resource reads of a target: memory settings, the buffer pool (pg_buffercache when
installed), I/O (pg_stat_io from 16, pg_stat_database before), and role allocations (the
limits each role carries). Read-only."""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg
from psycopg.rows import dict_row

from . import catalog

MEMORY_SETTINGS = (
    "shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size",
    "temp_buffers", "wal_buffers", "autovacuum_work_mem", "hash_mem_multiplier",
    "max_connections", "huge_pages",
)  # fmt: skip

_SETTINGS = """
SELECT /* opscore */ name, setting, unit, current_setting(name) AS value,
       CASE unit WHEN '8kB' THEN setting::numeric * 8192 WHEN 'kB' THEN setting::numeric * 1024
                 WHEN 'MB' THEN setting::numeric * 1048576 END::float8 AS bytes
  FROM pg_settings WHERE name = ANY(%s) ORDER BY name
"""

_BUFFERCACHE = """
SELECT /* opscore */ count(*) AS buffers,
       count(*) FILTER (WHERE relfilenode IS NOT NULL) AS used,
       count(*) FILTER (WHERE isdirty) AS dirty,
       coalesce(avg(usagecount) FILTER (WHERE relfilenode IS NOT NULL), 0)::float8
         AS avg_usagecount
  FROM pg_buffercache
"""

_BUFFERCACHE_TOP = """
SELECT /* opscore */ coalesce(format('%%I.%%I', n.nspname, c.relname), b.relfilenode::text)
         AS relation, count(*) AS buffers,
       count(*) FILTER (WHERE b.isdirty) AS dirty
  FROM pg_buffercache b
  LEFT JOIN pg_class c ON pg_relation_filenode(c.oid) = b.relfilenode
  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
 GROUP BY 1 ORDER BY 2 DESC LIMIT %s
"""

_DB_IO = """
SELECT /* opscore */ datname AS database, blks_read, blks_hit,
       round(100.0 * blks_hit / nullif(blks_hit + blks_read, 0), 2)::float8 AS hit_pct,
       blk_read_time, blk_write_time, temp_files, temp_bytes, stats_reset
  FROM pg_stat_database WHERE datname IS NOT NULL ORDER BY blks_read DESC
"""

_ALLOCATIONS = """
SELECT /* opscore */ r.rolname AS role, r.rolcanlogin AS can_login, r.rolsuper AS superuser,
       CASE WHEN r.rolconnlimit < 0 THEN NULL ELSE r.rolconnlimit END AS connection_limit,
       coalesce((SELECT s.setconfig FROM pg_db_role_setting s
                  WHERE s.setrole = r.oid AND s.setdatabase = 0), '{}') AS settings,
       ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
              WHERE m.member = r.oid ORDER BY 1) AS member_of,
       (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = r.rolname) AS sessions
  FROM pg_roles r
 WHERE r.rolname !~ '^pg_'
 ORDER BY r.rolcanlogin DESC, r.rolname
"""


def _frame(conn: psycopg.Connection, q: Any, params: Any = None) -> pd.DataFrame:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q, params)
        rows = cur.fetchall()
        names = [d.name for d in cur.description or []]
    return pd.DataFrame(rows, columns=names)


def memory_settings(conn: psycopg.Connection) -> pd.DataFrame:
    return _frame(conn, _SETTINGS, (list(MEMORY_SETTINGS),))


def has_extension(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT /* opscore */ 1 FROM pg_extension WHERE extname = %s", (name,)
    ).fetchone()
    return row is not None


def buffercache(conn: psycopg.Connection, top: int) -> tuple[dict[str, Any], pd.DataFrame]:
    summary = _frame(conn, _BUFFERCACHE).iloc[0].to_dict()
    return summary, _frame(conn, _BUFFERCACHE_TOP, (top,))


def io(conn: psycopg.Connection) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(pg_stat_database I/O per database, pg_stat_io rows or None before 16)."""
    q = catalog.query("pg_stat_io", conn.info.server_version)
    return _frame(conn, _DB_IO), (None if q is None else _frame(conn, q))


def allocations(conn: psycopg.Connection) -> pd.DataFrame:
    return _frame(conn, _ALLOCATIONS)
