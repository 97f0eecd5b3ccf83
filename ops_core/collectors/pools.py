"""Connection pools: PgBouncer's admin console (SHOW POOLS / SHOW STATS) when a target is
reached through it, and the server's own connections grouped by database, user, application
and state against max_connections. Read-only."""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg
from psycopg.rows import dict_row

_ACTIVITY = """
SELECT /* opscore */ datname AS database, usename AS "user", application_name,
       coalesce(state, 'unknown') AS state, count(*) AS connections,
       max(extract(epoch FROM now() - backend_start))::float8 AS oldest_s
  FROM pg_stat_activity WHERE backend_type = 'client backend'
 GROUP BY 1, 2, 3, 4 ORDER BY connections DESC, 1, 2, 3, 4
"""
_LIMITS = """
SELECT /* opscore */ current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int
         AS client_connections
"""


def activity(conn: psycopg.Connection) -> tuple[pd.DataFrame, dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_ACTIVITY)
        rows = cur.fetchall()
        names = [d.name for d in cur.description or []]
        cur.execute(_LIMITS)
        limits = dict(cur.fetchone() or {})
    return pd.DataFrame(rows, columns=names), limits


def pgbouncer(dsn: str, timeout_s: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SHOW POOLS and SHOW STATS of a PgBouncer admin console (a simple-protocol session)."""
    with psycopg.connect(
        dsn, autocommit=True, connect_timeout=timeout_s, application_name="opscore"
    ) as conn:
        out = []
        for command in ("SHOW POOLS", "SHOW STATS"):
            cur = conn.execute(command)
            names = [d.name for d in cur.description or []]
            out.append(pd.DataFrame(cur.fetchall(), columns=names))
    return out[0], out[1]
