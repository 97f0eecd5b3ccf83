"""Reads for the Performance Hub: snapshot ranges by time, per-snapshot trends, one statement's
history across snapshots, the stored text of a statement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import psycopg
from psycopg.rows import dict_row

from ..errors import NotFound


def _frame(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> pd.DataFrame:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        rows = cur.fetchall()
        names = [d.name for d in cur.description or []]
    return pd.DataFrame(rows, columns=names)


def snapshot_bounds(
    conn: psycopg.Connection, target_id: int, begin: datetime, end: datetime
) -> tuple[int | None, int | None]:
    """The usable snapshots that bound [begin, end]: the newest at or before ``begin`` (else the
    oldest inside the range) and the newest at or before ``end``."""
    row = conn.execute(
        """
        WITH ok AS (SELECT snapshot_id, captured_at FROM opscore.snapshots
                     WHERE target_id = %(t)s AND status <> 'failed')
        SELECT coalesce(
                 (SELECT snapshot_id FROM ok WHERE captured_at <= %(b)s
                   ORDER BY captured_at DESC LIMIT 1),
                 (SELECT snapshot_id FROM ok WHERE captured_at > %(b)s AND captured_at <= %(e)s
                   ORDER BY captured_at LIMIT 1)),
               (SELECT snapshot_id FROM ok WHERE captured_at <= %(e)s
                 ORDER BY captured_at DESC LIMIT 1)
        """,
        {"t": target_id, "b": begin, "e": end},
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def trends(
    conn: psycopg.Connection, target_id: int, begin_id: int, end_id: int, include_opscore: bool
) -> pd.DataFrame:
    """One row per snapshot in (begin_id, end_id] with deltas: statement time, calls, rows,
    transactions, block reads/hits, temp bytes, WAL bytes, and the interval in seconds."""
    return _frame(
        conn,
        """
        WITH snaps AS (
            SELECT snapshot_id, captured_at, interval_s FROM opscore.snapshots
             WHERE target_id = %(t)s AND snapshot_id > %(b)s AND snapshot_id <= %(e)s
               AND status <> 'failed' AND prev_snapshot_id IS NOT NULL AND interval_s > 0),
        st AS (  -- statement deltas are columnar: one row of arrays per snapshot
            SELECT x.snapshot_id, sum(u.total_exec_time)::float8 AS exec_ms,
                   coalesce(sum(u.calls), 0)::int8 AS calls, coalesce(sum(u.rows), 0)::int8 AS rows
              FROM opscore.snap_statements x
             CROSS JOIN LATERAL unnest(x.stmt_id, x.calls, x.total_exec_time, x.rows)
                   AS u(stmt_id, calls, total_exec_time, rows)
              JOIN opscore.statements s ON s.stmt_id = u.stmt_id
             WHERE x.snapshot_id IN (SELECT snapshot_id FROM snaps) AND (%(own)s OR NOT s.own)
             GROUP BY 1),
        db AS (
            SELECT snapshot_id,
                   sum(coalesce(xact_commit, 0) + coalesce(xact_rollback, 0))::int8 AS xacts,
                   coalesce(sum(blks_read), 0)::int8 AS blks_read,
                   coalesce(sum(blks_hit), 0)::int8 AS blks_hit,
                   coalesce(sum(temp_bytes), 0)::int8 AS temp_bytes,
                   coalesce(sum(numbackends), 0)::int8 AS backends
              FROM opscore.snap_databases
             WHERE snapshot_id IN (SELECT snapshot_id FROM snaps) AND (%(own)s OR NOT own)
             GROUP BY 1),
        wal AS (
            SELECT snapshot_id, (data -> 'deltas' ->> 'wal_bytes')::float8 AS wal_bytes
              FROM opscore.snap_cluster
             WHERE source = 'pg_stat_wal' AND snapshot_id IN (SELECT snapshot_id FROM snaps))
        SELECT snaps.snapshot_id, snaps.captured_at, snaps.interval_s,
               coalesce(st.exec_ms, 0) AS exec_ms, coalesce(st.calls, 0) AS calls,
               coalesce(st.rows, 0) AS rows, coalesce(db.xacts, 0) AS xacts,
               coalesce(db.blks_read, 0) AS blks_read, coalesce(db.blks_hit, 0) AS blks_hit,
               coalesce(db.temp_bytes, 0) AS temp_bytes, db.backends, wal.wal_bytes
          FROM snaps LEFT JOIN st USING (snapshot_id) LEFT JOIN db USING (snapshot_id)
          LEFT JOIN wal USING (snapshot_id)
         ORDER BY snaps.captured_at
        """,
        {"t": target_id, "b": begin_id, "e": end_id, "own": include_opscore},
    )


def statement_history(
    conn: psycopg.Connection,
    target_id: int,
    queryid: int,
    begin_id: int | None = None,
    end_id: int | None = None,
) -> pd.DataFrame:
    """One row per snapshot in which the statement ran (all databases and users summed).

    Snapshot details are columnar (one row of arrays per snapshot, see snapshot_columnar):
    the statement's ids are found first, then each snapshot's arrays are unnested."""
    from .snapshot_columnar import STATEMENTS

    cols = STATEMENTS.cols
    wanted = [
        "calls",
        "total_exec_time",
        "total_plan_time",
        "rows",
        "shared_blks_read",
        "shared_blks_hit",
        "temp_blks_written",
    ]
    cast = {c: ("float8" if "time" in c else "int8") for c in wanted}
    sums = ", ".join(f"coalesce(sum(u.{c}), 0)::{cast[c]} AS {c}" for c in wanted)
    return _frame(
        conn,
        f"""
        WITH ids AS (SELECT stmt_id FROM opscore.statements
                      WHERE target_id = %(t)s AND queryid = %(q)s)
        SELECT s.snapshot_id, s.captured_at, s.interval_s, {sums}
          FROM opscore.snapshots s
          JOIN opscore.snap_statements x USING (snapshot_id)
         CROSS JOIN LATERAL unnest({", ".join("x." + c for c in cols)}) AS u({", ".join(cols)})
         WHERE s.target_id = %(t)s AND u.stmt_id IN (SELECT stmt_id FROM ids)
           AND (%(b)s::int8 IS NULL OR s.snapshot_id > %(b)s)
           AND (%(e)s::int8 IS NULL OR s.snapshot_id <= %(e)s)
         GROUP BY s.snapshot_id, s.captured_at, s.interval_s
         ORDER BY s.captured_at
        """,
        {"t": target_id, "q": queryid, "b": begin_id, "e": end_id},
    )


def statement_text(conn: psycopg.Connection, target_id: int, queryid: int) -> dict[str, Any]:
    """The stored text of a statement with the database and user that ran it most recently."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT queryid, datname, username, query FROM opscore.statements "
            "WHERE target_id = %s AND queryid = %s AND query IS NOT NULL "
            "ORDER BY first_seen DESC LIMIT 1",
            (target_id, queryid),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(
            f"No statement with queryid {queryid} is stored for this target.",
            "Pick a statement from the Top SQL list (it needs to appear in a snapshot).",
        )
    return row
