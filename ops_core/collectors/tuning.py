"""Reads behind self-tuning: the tunable parameters as the server reports them (value, unit,
context, source) and the workload evidence since the statistics were reset (temporary files,
requested vs timed checkpoints, buffer hit ratio, dead rows). Read-only monitoring SQL."""

from __future__ import annotations

from typing import Any

import psycopg

from .live import live_sql
from .rows import dict_rows

__all__ = ["TUNABLE", "settings", "evidence", "database_setting"]

#: the parameters self-tuning knows how to reason about
TUNABLE = (
    "shared_buffers",
    "effective_cache_size",
    "maintenance_work_mem",
    "work_mem",
    "max_connections",
    "max_wal_size",
    "min_wal_size",
    "checkpoint_completion_target",
    "checkpoint_timeout",
    "random_page_cost",
    "effective_io_concurrency",
    "max_worker_processes",
    "max_parallel_workers",
    "max_parallel_workers_per_gather",
    "max_parallel_maintenance_workers",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_analyze_scale_factor",
    "autovacuum_max_workers",
    "autovacuum_naptime",
)


def settings(conn: psycopg.Connection) -> list[dict]:
    """The tunable parameters: value as shown, its raw setting and unit, context (postmaster:
    restart; sighup: reload; user/superuser: per session, database or role), source."""
    return dict_rows(
        conn,
        """
/* opscore */
SELECT name, current_setting(name) AS value, setting, unit, vartype, context, source,
       boot_val, reset_val, min_val, max_val, pending_restart
FROM pg_settings WHERE name = ANY(%s) ORDER BY name
""",
        (list(TUNABLE),),
    )


def database_setting(conn: psycopg.Connection, name: str) -> str | None:
    """The value of ``name`` set for the current database (ALTER DATABASE ... SET), if any."""
    rows = dict_rows(
        conn,
        """
/* opscore */
SELECT cfg FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
CROSS JOIN LATERAL unnest(s.setconfig) cfg
WHERE d.datname = current_database() AND s.setrole = 0 AND cfg LIKE %s
""",
        (name + "=%",),
    )
    return rows[0]["cfg"].split("=", 1)[1] if rows else None


def evidence(conn: psycopg.Connection) -> dict[str, Any]:
    """Workload counters since the last statistics reset, for the current database and the
    server: temporary files, checkpoints by cause, buffer hits and reads, dead rows."""
    db = dict_rows(
        conn,
        """
/* opscore */
SELECT temp_files, temp_bytes, blks_hit, blks_read, xact_commit, xact_rollback, stats_reset,
       extract(epoch FROM now() - coalesce(stats_reset, pg_postmaster_start_time()))::float8
           AS seconds
FROM pg_stat_database WHERE datname = current_database()
""",
    )
    ckpt = dict_rows(conn, live_sql("checkpointer", conn.info.server_version))
    dead = dict_rows(
        conn,
        """
/* opscore */
SELECT coalesce(sum(n_dead_tup), 0)::int8 AS dead_rows, coalesce(sum(n_live_tup), 0)::int8
       AS live_rows,
       count(*) FILTER (WHERE n_dead_tup > 0.2 * greatest(n_live_tup, 1) AND n_dead_tup > 1000)
           AS bloated_tables
FROM pg_stat_user_tables
""",
    )
    wal = dict_rows(conn, "/* opscore */ SELECT wal_bytes::int8 AS wal_bytes FROM pg_stat_wal")
    out: dict[str, Any] = {**(db[0] if db else {}), **(dead[0] if dead else {})}
    out["wal_bytes"] = wal[0]["wal_bytes"] if wal else None
    if ckpt:
        out["checkpoints_timed"] = ckpt[0].get("num_timed")
        out["checkpoints_requested"] = ckpt[0].get("num_requested")
    return out
