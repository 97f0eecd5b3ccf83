"""Repository reads and writes of workload ML and capacity: per-snapshot series, model
metadata, anomalies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from . import perf_reads


def _frame(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> pd.DataFrame:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        rows = cur.fetchall()
        names = [d.name for d in cur.description or []]
    return pd.DataFrame(rows, columns=names)


def snapshot_series(
    conn: psycopg.Connection, target_id: int, include_opscore: bool
) -> pd.DataFrame:
    """Every usable snapshot of the target: the per-interval deltas of perf_reads.trends."""
    return perf_reads.trends(conn, target_id, 0, 2**62, include_opscore)


def database_series(conn: psycopg.Connection, target_id: int, datname: str) -> pd.DataFrame:
    """The columns of :func:`snapshot_series` for one database of the cluster: its statements
    (pg_stat_statements rows of that database) and its pg_stat_database row; WAL is
    cluster-wide and left out (NULL)."""
    return _frame(
        conn,
        """
        WITH snaps AS (
            SELECT snapshot_id, captured_at, interval_s FROM opscore.snapshots
             WHERE target_id = %(t)s AND status <> 'failed' AND prev_snapshot_id IS NOT NULL
               AND interval_s > 0),
        st AS (
            SELECT x.snapshot_id, sum(u.total_exec_time)::float8 AS exec_ms,
                   coalesce(sum(u.calls), 0)::int8 AS calls, coalesce(sum(u.rows), 0)::int8 AS rows
              FROM opscore.snap_statements x
             CROSS JOIN LATERAL unnest(x.stmt_id, x.calls, x.total_exec_time, x.rows)
                   AS u(stmt_id, calls, total_exec_time, rows)
              JOIN opscore.statements s ON s.stmt_id = u.stmt_id
             WHERE x.snapshot_id IN (SELECT snapshot_id FROM snaps) AND s.datname = %(d)s
               AND NOT s.own
             GROUP BY 1),
        db AS (
            SELECT snapshot_id,
                   sum(coalesce(xact_commit, 0) + coalesce(xact_rollback, 0))::int8 AS xacts,
                   coalesce(sum(blks_read), 0)::int8 AS blks_read,
                   coalesce(sum(blks_hit), 0)::int8 AS blks_hit,
                   coalesce(sum(temp_bytes), 0)::int8 AS temp_bytes,
                   coalesce(sum(numbackends), 0)::int8 AS backends
              FROM opscore.snap_databases
             WHERE snapshot_id IN (SELECT snapshot_id FROM snaps) AND datname = %(d)s
             GROUP BY 1)
        SELECT snaps.snapshot_id, snaps.captured_at, snaps.interval_s,
               coalesce(st.exec_ms, 0) AS exec_ms, coalesce(st.calls, 0) AS calls,
               coalesce(st.rows, 0) AS rows, coalesce(db.xacts, 0) AS xacts,
               coalesce(db.blks_read, 0) AS blks_read, coalesce(db.blks_hit, 0) AS blks_hit,
               coalesce(db.temp_bytes, 0) AS temp_bytes, db.backends,
               NULL::float8 AS wal_bytes
          FROM snaps LEFT JOIN st USING (snapshot_id) LEFT JOIN db USING (snapshot_id)
         ORDER BY snaps.captured_at
        """,
        {"t": target_id, "d": datname},
    )


def statement_intervals(
    conn: psycopg.Connection, target_id: int, include_opscore: bool, datname: str | None = None
) -> pd.DataFrame:
    """Per snapshot interval and statement (queryid, all databases and users summed, or only
    database ``datname``): calls, exec_ms, rows, shared blocks hit/read/dirtied/written, temp
    blocks written, WAL bytes, and one stored text of the statement."""
    return _frame(
        conn,
        """
        WITH snaps AS (
            SELECT snapshot_id, captured_at, interval_s FROM opscore.snapshots
             WHERE target_id = %(t)s AND status <> 'failed' AND prev_snapshot_id IS NOT NULL
               AND interval_s > 0),
        per AS (
            SELECT x.snapshot_id, s.queryid, sum(u.calls)::float8 AS calls,
                   sum(u.total_exec_time)::float8 AS exec_ms, sum(u.rows)::float8 AS rows,
                   sum(u.shared_blks_hit)::float8 AS blks_hit,
                   sum(u.shared_blks_read)::float8 AS blks_read,
                   sum(u.shared_blks_dirtied)::float8 AS blks_dirtied,
                   sum(u.shared_blks_written)::float8 AS blks_written,
                   sum(u.temp_blks_written)::float8 AS temp_blks,
                   sum(u.wal_bytes)::float8 AS wal_bytes
              FROM opscore.snap_statements x
             CROSS JOIN LATERAL unnest(x.stmt_id, x.calls, x.total_exec_time, x.rows,
                   x.shared_blks_hit, x.shared_blks_read, x.shared_blks_dirtied,
                   x.shared_blks_written, x.temp_blks_written, x.wal_bytes)
                   AS u(stmt_id, calls, total_exec_time, rows, shared_blks_hit,
                        shared_blks_read, shared_blks_dirtied, shared_blks_written,
                        temp_blks_written, wal_bytes)
              JOIN opscore.statements s ON s.stmt_id = u.stmt_id
             WHERE x.snapshot_id IN (SELECT snapshot_id FROM snaps)
               AND (%(own)s OR NOT s.own)
               AND (%(d)s::text IS NULL OR s.datname = %(d)s)
             GROUP BY 1, 2),
        texts AS (
            SELECT DISTINCT ON (queryid) queryid, query FROM opscore.statements
             WHERE target_id = %(t)s AND query IS NOT NULL
             ORDER BY queryid, first_seen DESC)
        SELECT snaps.snapshot_id, snaps.captured_at, snaps.interval_s::float8 AS interval_s,
               per.queryid, per.calls, per.exec_ms, per.rows, per.blks_hit, per.blks_read,
               per.blks_dirtied, per.blks_written, per.temp_blks, per.wal_bytes, texts.query
          FROM per JOIN snaps USING (snapshot_id) LEFT JOIN texts USING (queryid)
         WHERE per.calls > 0
         ORDER BY snaps.captured_at, per.queryid
        """,
        {"t": target_id, "own": include_opscore, "d": datname},
    )


def database_names(conn: psycopg.Connection, target_id: int) -> list[str]:
    """Databases the target's snapshots have seen."""
    rows = conn.execute(
        "SELECT DISTINCT d.datname FROM opscore.snap_databases d "
        "JOIN opscore.snapshots s USING (snapshot_id) WHERE s.target_id = %s "
        "AND d.datname IS NOT NULL AND d.datid <> 0 ORDER BY 1",
        (target_id,),
    ).fetchall()
    return [r[0] for r in rows]


def newest_snapshot(conn: psycopg.Connection, target_id: int) -> int | None:
    """The id of the target's newest snapshot that did not fail (None: no snapshot)."""
    row = conn.execute(
        "SELECT max(snapshot_id) FROM opscore.snapshots WHERE target_id = %s "
        "AND status <> 'failed'",
        (target_id,),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def capacity_series(
    conn: psycopg.Connection, target_id: int, include_opscore: bool
) -> pd.DataFrame:
    """Per snapshot: total database size (when sizes were read), connections, host data disk
    total/used (same-host targets), and the connection limits: from the ``limits`` capture
    (``limits_from`` 'limits'; ``reserved_conn`` NULL before PostgreSQL 16), else from the
    non-default settings of older snapshots ('settings': ``reserved`` NULL when
    superuser_reserved_connections was at its default there)."""
    return _frame(
        conn,
        """
        WITH s AS (SELECT snapshot_id, captured_at FROM opscore.snapshots
                    WHERE target_id = %(t)s AND status <> 'failed'),
        db AS (SELECT snapshot_id, sum(size_bytes)::float8 AS db_size_bytes,
                      count(size_bytes) AS sized, sum(numbackends)::float8 AS connections
                 FROM opscore.snap_databases
                WHERE snapshot_id IN (SELECT snapshot_id FROM s) AND (%(own)s OR NOT own)
                GROUP BY 1),
        host AS (SELECT snapshot_id,
                        (data -> 'values' ->> 'data_disk_total')::float8 AS disk_total_bytes,
                        (data -> 'values' ->> 'data_disk_used')::float8 AS disk_used_bytes
                   FROM opscore.snap_cluster
                  WHERE source = 'host' AND snapshot_id IN (SELECT snapshot_id FROM s)),
        lim AS (SELECT snapshot_id,
                       (data -> 'values' ->> 'max_connections')::float8 AS max_connections,
                       (data -> 'values' ->> 'superuser_reserved_connections')::float8
                           AS superuser_reserved,
                       (data -> 'values' ->> 'reserved_connections')::float8 AS reserved_conn
                  FROM opscore.snap_cluster
                 WHERE source = 'limits' AND snapshot_id IN (SELECT snapshot_id FROM s)),
        st AS (SELECT snapshot_id,
                      (SELECT (e ->> 'setting')::float8
                         FROM jsonb_array_elements(data -> 'values') e
                        WHERE e ->> 'name' = 'max_connections') AS max_connections,
                      (SELECT (e ->> 'setting')::float8
                         FROM jsonb_array_elements(data -> 'values') e
                        WHERE e ->> 'name' = 'superuser_reserved_connections') AS reserved
                 FROM opscore.snap_cluster
                WHERE source = 'settings' AND snapshot_id IN (SELECT snapshot_id FROM s))
        SELECT s.snapshot_id, s.captured_at,
               CASE WHEN db.sized > 0 THEN db.db_size_bytes END AS db_size_bytes,
               db.connections, host.disk_total_bytes, host.disk_used_bytes,
               coalesce(lim.max_connections, st.max_connections) AS max_connections,
               CASE WHEN lim.snapshot_id IS NOT NULL THEN lim.superuser_reserved
                    ELSE st.reserved END AS reserved,
               lim.reserved_conn,
               CASE WHEN lim.snapshot_id IS NOT NULL THEN 'limits'
                    WHEN st.max_connections IS NOT NULL THEN 'settings' END AS limits_from
          FROM s LEFT JOIN db USING (snapshot_id) LEFT JOIN host USING (snapshot_id)
          LEFT JOIN st USING (snapshot_id) LEFT JOIN lim USING (snapshot_id)
         ORDER BY s.captured_at
        """,
        {"t": target_id, "own": include_opscore},
    )


def newest_limits(conn: psycopg.Connection, target_id: int) -> dict[str, Any] | None:
    """The connection limits the newest snapshot captured (the ``limits`` source):
    max_connections, superuser_reserved_connections, reserved_connections (NULL before
    PostgreSQL 16) and captured_at; None when no snapshot of the target captured them."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT s.captured_at,
                   (c.data -> 'values' ->> 'max_connections')::int AS max_connections,
                   (c.data -> 'values' ->> 'superuser_reserved_connections')::int
                       AS superuser_reserved_connections,
                   (c.data -> 'values' ->> 'reserved_connections')::int AS reserved_connections
              FROM opscore.snap_cluster c JOIN opscore.snapshots s USING (snapshot_id)
             WHERE s.target_id = %s AND c.source = 'limits' AND s.status <> 'failed'
             ORDER BY s.captured_at DESC LIMIT 1
            """,
            (target_id,),
        )
        return cur.fetchone()


def database_sizes(conn: psycopg.Connection, target_id: int, include_opscore: bool) -> pd.DataFrame:
    """captured_at, datname, size_bytes of every sized snapshot."""
    return _frame(
        conn,
        """
        SELECT s.captured_at, d.datname, d.size_bytes::float8 AS size_bytes
          FROM opscore.snapshots s JOIN opscore.snap_databases d USING (snapshot_id)
         WHERE s.target_id = %(t)s AND s.status <> 'failed' AND d.size_bytes IS NOT NULL
           AND d.datid <> 0 AND (%(own)s OR NOT d.own)
         ORDER BY s.captured_at, d.datname
        """,
        {"t": target_id, "own": include_opscore},
    )


def table_sizes(conn: psycopg.Connection, target_id: int, include_opscore: bool) -> pd.DataFrame:
    """captured_at, datname, relid, schemaname, relname, total_bytes (heap + indexes + TOAST)
    of every table a sized snapshot stored. A table stored only when its counters moved is
    absent from the sized snapshots where it did not change; the caller carries its last size
    forward over those (its size cannot change without a write or a vacuum, both counted)."""
    return _frame(
        conn,
        """
        SELECT s.captured_at, t.datname, u.relid::int8 AS relid, u.schemaname, u.relname,
               u.total_bytes::float8 AS total_bytes
          FROM opscore.snapshots s
          JOIN opscore.snap_tables t USING (snapshot_id)
         CROSS JOIN LATERAL unnest(t.relid, t.schemaname, t.relname, t.total_bytes)
               AS u(relid, schemaname, relname, total_bytes)
         WHERE s.target_id = %(t)s AND s.status <> 'failed' AND s.with_sizes
           AND u.total_bytes IS NOT NULL
           AND (%(own)s OR t.datname IS DISTINCT FROM s.own_datname)
         ORDER BY s.captured_at
        """,
        {"t": target_id, "own": include_opscore},
    )


def sized_snapshot_times(conn: psycopg.Connection, target_id: int) -> pd.DataFrame:
    """captured_at of every sized snapshot of the target, oldest first."""
    return _frame(
        conn,
        "SELECT captured_at FROM opscore.snapshots WHERE target_id = %(t)s "
        "AND status <> 'failed' AND with_sizes ORDER BY captured_at",
        {"t": target_id},
    )


def wraparound_series(conn: psycopg.Connection, target_id: int) -> pd.DataFrame:
    """Per snapshot and database: transaction-ID and multixact age, with the autovacuum
    freeze and failsafe ages in force (snapshots taken since the wraparound capture)."""
    return _frame(
        conn,
        """
        SELECT s.captured_at, w.datname, w.xid_age::float8 AS xid_age,
               w.mxid_age::float8 AS mxid_age, w.freeze_max_age::float8 AS freeze_max_age,
               w.mxid_freeze_max_age::float8 AS mxid_freeze_max_age,
               w.failsafe_age::float8 AS failsafe_age,
               w.mxid_failsafe_age::float8 AS mxid_failsafe_age, w.autovacuum
          FROM opscore.snapshots s JOIN opscore.snap_wraparound w USING (snapshot_id)
         WHERE s.target_id = %(t)s AND s.status <> 'failed'
         ORDER BY s.captured_at, w.datname
        """,
        {"t": target_id},
    )


def sequence_series(conn: psycopg.Connection, target_id: int) -> pd.DataFrame:
    """Per snapshot and sequence: last value (NULL: never called or not readable) and
    bounds."""
    return _frame(
        conn,
        """
        SELECT s.captured_at, q.datname, q.schemaname, q.sequencename, q.data_type,
               q.last_value::float8 AS last_value, q.min_value::float8 AS min_value,
               q.max_value::float8 AS max_value, q.increment_by::float8 AS increment_by,
               q.cycle
          FROM opscore.snapshots s JOIN opscore.snap_sequences q USING (snapshot_id)
         WHERE s.target_id = %(t)s AND s.status <> 'failed'
         ORDER BY q.datname, q.schemaname, q.sequencename, s.captured_at
        """,
        {"t": target_id},
    )


# ---------------------------------------------------------------------------------- models


def next_version(conn: psycopg.Connection, target_id: int, kind: str) -> int:
    row = conn.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM opscore.ml_models "
        "WHERE target_id = %s AND kind = %s",
        (target_id, kind),
    ).fetchone()
    return int(row[0]) if row else 1


def store_model(
    conn: psycopg.Connection, target_id: int, kind: str, meta: dict[str, Any]
) -> dict[str, Any]:
    """Insert a model as ``active``; the active one becomes ``previous`` (kept for rollback),
    an older ``previous`` becomes ``retired``. One transaction."""
    with conn.transaction():
        conn.execute(
            "UPDATE opscore.ml_models SET status = 'retired' "
            "WHERE target_id = %s AND kind = %s AND status = 'previous'",
            (target_id, kind),
        )
        conn.execute(
            "UPDATE opscore.ml_models SET status = 'previous' "
            "WHERE target_id = %s AND kind = %s AND status = 'active'",
            (target_id, kind),
        )
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                """
                INSERT INTO opscore.ml_models (target_id, kind, version, status, data_begin,
                       data_end, points, enough_history, methods, validation, notes, path)
                VALUES (%(t)s, %(kind)s, %(version)s, 'active', %(data_begin)s, %(data_end)s,
                        %(points)s, %(enough)s, %(methods)s, %(validation)s, %(notes)s, %(path)s)
                RETURNING *
                """,
                {
                    "t": target_id,
                    "kind": kind,
                    "version": meta["version"],
                    "data_begin": meta.get("data_begin"),
                    "data_end": meta.get("data_end"),
                    "points": meta["points"],
                    "enough": meta["enough_history"],
                    "methods": Jsonb(meta.get("methods", {})),
                    "validation": Jsonb(meta.get("validation", {})),
                    "notes": Jsonb(meta.get("notes", [])),
                    "path": meta.get("path"),
                },
            )
            row = cur.fetchone()
    assert row is not None
    return row


def models(
    conn: psycopg.Connection, target_id: int, kind: str | None = None
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT * FROM opscore.ml_models WHERE target_id = %s "
            "AND (%s::text IS NULL OR kind = %s) ORDER BY version DESC",
            (target_id, kind, kind),
        )
        return cur.fetchall()


def active_model(conn: psycopg.Connection, target_id: int, kind: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT * FROM opscore.ml_models WHERE target_id = %s AND kind = %s "
            "AND status = 'active'",
            (target_id, kind),
        )
        return cur.fetchone()


# ------------------------------------------------------------------------------- anomalies


def snapshots_around(
    conn: psycopg.Connection, target_id: int, begin: datetime, end: datetime
) -> tuple[int | None, int | None]:
    return perf_reads.snapshot_bounds(conn, target_id, begin, end)


def store_anomaly(conn: psycopg.Connection, target_id: int, a: dict[str, Any]) -> int:
    """Insert (or refresh, for the same target, start and detector) one anomaly; its id."""
    row = conn.execute(
        """
        INSERT INTO opscore.ml_anomalies (target_id, model_id, begin_at, end_at, score, severity,
               detector, metrics, begin_snapshot_id, end_snapshot_id, addm_analysis_id, datname,
               note)
        VALUES (%(t)s, %(model_id)s, %(begin_at)s, %(end_at)s, %(score)s, %(severity)s,
                %(detector)s, %(metrics)s, %(b)s, %(e)s, %(addm)s, %(d)s, %(note)s)
        ON CONFLICT (target_id, (coalesce(datname, '')), begin_at, detector) DO UPDATE
           SET end_at = excluded.end_at, score = excluded.score, severity = excluded.severity,
               metrics = excluded.metrics, model_id = excluded.model_id,
               note = excluded.note, detected_at = now(),
               addm_analysis_id = coalesce(excluded.addm_analysis_id,
                                           opscore.ml_anomalies.addm_analysis_id)
        RETURNING anomaly_id
        """,
        {
            "t": target_id,
            "model_id": a.get("model_id"),
            "begin_at": a["begin_at"],
            "end_at": a["end_at"],
            "score": a["score"],
            "severity": a["severity"],
            "detector": a["detector"],
            "metrics": Jsonb(a["metrics"]),
            "b": a.get("begin_snapshot_id"),
            "e": a.get("end_snapshot_id"),
            "addm": a.get("addm_analysis_id"),
            "d": a.get("datname"),
            "note": a.get("note"),
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


def addm_covering(
    conn: psycopg.Connection, target_id: int, begin_id: int, end_id: int
) -> int | None:
    """An existing ADDM analysis whose snapshot range covers [begin_id, end_id] (the
    narrowest)."""
    row = conn.execute(
        "SELECT analysis_id FROM opscore.addm_analyses WHERE target_id = %s "
        "AND begin_snapshot_id <= %s AND end_snapshot_id >= %s "
        "ORDER BY end_snapshot_id - begin_snapshot_id, analysis_id DESC LIMIT 1",
        (target_id, begin_id, end_id),
    ).fetchone()
    return int(row[0]) if row else None


def anomalies(
    conn: psycopg.Connection,
    target_id: int,
    begin: datetime | None = None,
    end: datetime | None = None,
    severity: str | None = None,
    datname: str | None = None,
) -> pd.DataFrame:
    """Stored anomalies of the whole cluster (``datname`` None) or of one database."""
    return _frame(
        conn,
        """
        SELECT anomaly_id, begin_at, end_at, score, severity, detector, metrics,
               begin_snapshot_id, end_snapshot_id, addm_analysis_id, model_id, detected_at,
               datname, note
          FROM opscore.ml_anomalies
         WHERE target_id = %(t)s AND datname IS NOT DISTINCT FROM %(d)s
           AND (%(b)s::timestamptz IS NULL OR end_at >= %(b)s)
           AND (%(e)s::timestamptz IS NULL OR begin_at <= %(e)s)
           AND (%(s)s::text IS NULL OR severity = %(s)s)
         ORDER BY begin_at DESC
        """,
        {"t": target_id, "b": begin, "e": end, "s": severity, "d": datname},
    )
