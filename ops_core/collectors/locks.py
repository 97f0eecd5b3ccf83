"""Live locks of a target: pg_locks with the sessions holding and waiting (pg_stat_activity),
who blocks whom (pg_blocking_pids), and the deadlock counters of pg_stat_database.
Read-only monitoring SQL."""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg
from psycopg.rows import dict_row

_LOCKS = """
SELECT /* opscore */ l.pid, l.locktype, l.mode, l.granted, l.fastpath,
       d.datname AS database,
       CASE WHEN l.relation IS NOT NULL
            THEN coalesce(format('%%I.%%I', n.nspname, c.relname), l.relation::text) END
         AS relation,
       l.page, l.tuple, l.virtualxid, l.transactionid::text AS transactionid,
       l.virtualtransaction,
       a.usename, a.application_name, a.client_addr::text AS client_addr, a.state,
       a.wait_event_type, a.wait_event,
       extract(epoch FROM now() - a.xact_start)::float8 AS xact_age_s,
       extract(epoch FROM now() - a.state_change)::float8 AS state_age_s,
       left(a.query, %(text_max)s) AS query,
       pg_blocking_pids(l.pid) AS blocked_by
  FROM pg_locks l
  LEFT JOIN pg_database d ON d.oid = l.database
  LEFT JOIN pg_class c ON c.oid = l.relation AND l.database = (
       SELECT oid FROM pg_database WHERE datname = current_database())
  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.pid IS DISTINCT FROM pg_backend_pid()
   AND (%(include_opscore)s OR coalesce(a.application_name, '') NOT LIKE 'opscore%%')
   AND (%(all_locks)s OR NOT l.granted OR l.pid IN (
        SELECT unnest(pg_blocking_pids(w.pid)) FROM pg_locks w WHERE NOT w.granted))
 ORDER BY l.granted, l.pid, l.locktype
"""

_SESSIONS = """
SELECT /* opscore */ a.pid, a.usename, a.datname AS database, a.application_name, a.state,
       a.wait_event_type, a.wait_event,
       extract(epoch FROM now() - a.xact_start)::float8 AS xact_age_s,
       extract(epoch FROM now() - coalesce(a.query_start, a.state_change))::float8
         AS waiting_s,
       left(a.query, %(text_max)s) AS query, pg_blocking_pids(a.pid) AS blocked_by
  FROM pg_stat_activity a
 WHERE a.pid <> pg_backend_pid()
   AND (cardinality(pg_blocking_pids(a.pid)) > 0 OR a.pid IN (
        SELECT unnest(pg_blocking_pids(w.pid)) FROM pg_stat_activity w))
"""

_DEADLOCKS = """
SELECT /* opscore */ datname AS database, deadlocks, stats_reset
  FROM pg_stat_database WHERE datname IS NOT NULL ORDER BY deadlocks DESC, datname
"""


def locks(
    conn: psycopg.Connection, *, all_locks: bool, include_opscore: bool, text_max: int = 300
) -> pd.DataFrame:
    """pg_locks rows with their sessions; by default only the locks in conflict (waiting, and
    held by a blocker), ``all_locks`` for every lock."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _LOCKS,
            {"text_max": text_max, "include_opscore": include_opscore, "all_locks": all_locks},
        )
        rows = cur.fetchall()
        names = [d.name for d in cur.description or []]
    return pd.DataFrame(rows, columns=names)


def blocking_sessions(conn: psycopg.Connection, text_max: int = 300) -> list[dict[str, Any]]:
    """Sessions that wait for a lock or hold one another waits for."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_SESSIONS, {"text_max": text_max})
        return list(cur.fetchall())


def deadlock_counters(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_DEADLOCKS)
        return list(cur.fetchall())


def server_now(conn: psycopg.Connection) -> Any:
    return conn.execute("SELECT /* opscore */ now()").fetchone()[0]  # type: ignore[index]
