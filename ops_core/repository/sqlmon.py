"""SQL Monitor executions in the repository (migration 0014): written from the live monitor and
from the ASH samples, read for lists, details and overall statistics, purged by retention."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..model.waits import event_sql, is_db_time_sql, wait_class_sql
from .ash_tiers import decoding, tiers_sql

NO_START = datetime.min  # stands for an unknown backend_start ('-infinity')

_COLUMNS = (
    "exec_id, pid, backend_start, query_start, query_id, query, usename, datname, "
    "application_name, client_addr, first_seen, last_seen, elapsed_s, status, state, samples, "
    "db_time_s, waits, blocking_pids, progress, source"
)


def record_live(
    conn: psycopg.Connection, target_id: int, rows: list[dict[str, Any]], *, min_elapsed_s: float
) -> list[int]:
    """Upsert the executions seen running now (those over ``min_elapsed_s``) and mark the
    target's other 'running' executions done (``rows`` is every active session of this poll,
    so an execution missing from it has finished). The exec ids of the rows kept, in order."""
    ids: list[int] = []
    alive = [(r["pid"], r["query_start"]) for r in rows]
    with conn.transaction():
        for r in rows:
            if r["elapsed_s"] < min_elapsed_s:
                continue
            row = conn.execute(
                """
                INSERT INTO opscore.sqlmon_executions AS e
                       (target_id, pid, backend_start, query_start, query_id, query, usename,
                        datname, application_name, client_addr, first_seen, last_seen,
                        elapsed_s, status, state, blocking_pids, progress, source)
                VALUES (%(t)s, %(pid)s, coalesce(%(backend_start)s, '-infinity'), %(query_start)s,
                        %(query_id)s, %(query)s, %(usename)s, %(datname)s, %(application_name)s,
                        %(client_addr)s, %(seen_at)s, %(seen_at)s, %(elapsed_s)s, 'running',
                        %(state)s, %(blocking_pids)s, %(progress)s, 'live')
                ON CONFLICT (target_id, pid, backend_start, query_start) DO UPDATE
                   SET last_seen = greatest(e.last_seen, excluded.last_seen),
                       elapsed_s = greatest(e.elapsed_s, excluded.elapsed_s),
                       status = 'running', state = excluded.state,
                       query_id = coalesce(excluded.query_id, e.query_id),
                       query = coalesce(excluded.query, e.query),
                       blocking_pids = excluded.blocking_pids,
                       progress = coalesce(excluded.progress, e.progress)
                RETURNING exec_id
                """,
                {
                    **r,
                    "t": target_id,
                    "progress": Jsonb(r["progress"]) if r.get("progress") else None,
                },
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))
        mark_finished(conn, target_id, alive)
    return ids


def mark_finished(
    conn: psycopg.Connection, target_id: int, alive: list[tuple[int, datetime]]
) -> int:
    """Mark done the target's 'running' executions that are not in ``alive`` (pid,
    query_start of every session active now)."""
    cur = conn.execute(
        """
        UPDATE opscore.sqlmon_executions e SET status = 'done'
         WHERE e.target_id = %s AND e.status = 'running'
           AND (e.pid, e.query_start) NOT IN (SELECT * FROM unnest(%s::int[], %s::timestamptz[]))
        """,
        (target_id, [a[0] for a in alive], [a[1] for a in alive]),
    )
    return cur.rowcount


def record_from_ash(
    conn: psycopg.Connection,
    target_id: int,
    begin: datetime,
    end: datetime,
    *,
    min_elapsed_s: float,
    running: set[tuple[int, datetime]] | None = None,
) -> int:
    """Executions sampled by ASH in [begin, end) that ran at least ``min_elapsed_s`` (first
    query_start to last sample): inserted, or their ASH figures (samples, DB time, waits by
    class) and elapsed updated. Executions still running (``running``: (pid, query_start))
    stay 'running'. Returns the number of executions written."""
    running = running or set()
    cls = wait_class_sql("s.state", "s.wait_event_type")
    dbt = is_db_time_sql("s.state", "s.wait_event_type", "s.backend_type")
    q = sql.SQL(
        """
        WITH s AS (
            SELECT s.*, {cls} AS wait_class, {dbt} AS db_time
              FROM {tiers}
             WHERE s.target_id = %(t)s AND s.sample_time >= %(begin)s AND s.sample_time < %(end)s
               AND s.query_start IS NOT NULL AND s.pid IS NOT NULL
               AND s.state IN ('active', 'fastpath function call')
        ), per_class AS (
            SELECT pid, coalesce(backend_start, '-infinity') AS backend_start, query_start,
                   wait_class, sum(weight_s) AS secs
              FROM s GROUP BY 1, 2, 3, 4
        ), ex AS (
            SELECT s.pid, coalesce(s.backend_start, '-infinity') AS backend_start, s.query_start,
                   max(s.query_id) AS query_id, max(q.query_text) AS query,
                   max(s.usename) AS usename, max(s.datname) AS datname,
                   max(s.application_name) AS application_name,
                   max(host(s.client_addr)) AS client_addr,
                   min(s.sample_time) AS first_seen, max(s.sample_time) AS last_seen,
                   count(*) AS samples,
                   coalesce(sum(s.weight_s) FILTER (WHERE s.db_time), 0) AS db_time_s
              FROM s
              LEFT JOIN opscore.ash_query_texts q
                     ON q.target_id = s.target_id AND q.text_hash = s.text_hash
             GROUP BY s.pid, coalesce(s.backend_start, '-infinity'), s.query_start
            HAVING extract(epoch FROM max(s.sample_time) - s.query_start) >= %(min)s
        )
        INSERT INTO opscore.sqlmon_executions AS e
               (target_id, pid, backend_start, query_start, query_id, query, usename, datname,
                application_name, client_addr, first_seen, last_seen, elapsed_s, status, state,
                samples, db_time_s, waits, source)
        SELECT %(t)s, pid, backend_start, query_start, query_id, query, usename, datname,
               application_name, client_addr, first_seen, last_seen,
               greatest(0, extract(epoch FROM last_seen - query_start))::float8,
               CASE WHEN (pid, query_start) IN (SELECT * FROM unnest(%(rp)s::int[],
                                                                     %(rq)s::timestamptz[]))
                    THEN 'running' ELSE 'done' END,
               'active', samples, db_time_s,
               coalesce((SELECT jsonb_object_agg(c.wait_class, round(c.secs::numeric, 3))
                           FROM per_class c
                          WHERE c.pid = ex.pid AND c.query_start = ex.query_start
                            AND c.backend_start = ex.backend_start), '{{}}'), 'ash'
          FROM ex
        ON CONFLICT (target_id, pid, backend_start, query_start) DO UPDATE
           SET samples = greatest(e.samples, excluded.samples),
               db_time_s = greatest(e.db_time_s, excluded.db_time_s),
               waits = CASE WHEN excluded.samples >= e.samples THEN excluded.waits
                            ELSE e.waits END,
               first_seen = least(e.first_seen, excluded.first_seen),
               last_seen = greatest(e.last_seen, excluded.last_seen),
               elapsed_s = greatest(e.elapsed_s, excluded.elapsed_s),
               query_id = coalesce(e.query_id, excluded.query_id),
               query = coalesce(e.query, excluded.query),
               status = CASE WHEN e.status = 'running' AND excluded.status = 'done'
                              AND e.source = 'live' THEN e.status ELSE excluded.status END
        """
    ).format(cls=cls, dbt=dbt, tiers=tiers_sql(True, target="t", begin="begin", end="end"))
    params = {
        "t": target_id,
        "begin": begin,
        "end": end,
        "min": float(min_elapsed_s),
        "rp": [p for p, _ in running],
        "rq": [q_ for _, q_ in running],
    }
    with decoding(conn):
        cur = conn.execute(q, params)
        return cur.rowcount


def list_executions(
    conn: psycopg.Connection,
    target_id: int,
    *,
    begin: datetime | None = None,
    end: datetime | None = None,
    status: str | None = None,
    min_elapsed_s: float = 0.0,
    query_id: int | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Executions of a target that overlap [begin, end), longest first."""
    q = sql.SQL(
        "SELECT {cols} FROM opscore.sqlmon_executions"
        " WHERE target_id = %(t)s AND elapsed_s >= %(min)s"
        "   AND (%(end)s::timestamptz IS NULL OR query_start < %(end)s)"
        "   AND (%(begin)s::timestamptz IS NULL OR last_seen >= %(begin)s)"
        "   AND (%(status)s::text IS NULL OR status = %(status)s)"
        "   AND (%(qid)s::bigint IS NULL OR query_id = %(qid)s)"
        " ORDER BY elapsed_s DESC, exec_id LIMIT %(limit)s"
    ).format(cols=sql.SQL(_COLUMNS))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            q,
            {
                "t": target_id,
                "min": float(min_elapsed_s),
                "begin": begin,
                "end": end,
                "status": status,
                "qid": query_id,
                "limit": int(limit),
            },
        )
        return list(cur.fetchall())


def get(conn: psycopg.Connection, exec_id: int) -> dict[str, Any] | None:
    q = sql.SQL("SELECT target_id, {cols} FROM opscore.sqlmon_executions WHERE exec_id = %s")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q.format(cols=sql.SQL(_COLUMNS)), (int(exec_id),))
        return cur.fetchone()


def timeline(conn: psycopg.Connection, e: dict[str, Any]) -> list[dict[str, Any]]:
    """The ASH samples of one execution (its pid, backend start and query_start), oldest first:
    sample time, state, wait class and event, blocking pids."""
    cls = wait_class_sql("s.state", "s.wait_event_type")
    ev = event_sql("s.state", "s.wait_event_type", "s.wait_event")
    q = sql.SQL(
        """
        SELECT s.sample_time, s.weight_s, s.state, {cls} AS wait_class, s.wait_event_type,
               {ev} AS event, s.blocking_pids
          FROM {tiers}
         WHERE s.target_id = %(t)s AND s.sample_time >= %(begin)s AND s.sample_time < %(end)s
           AND s.pid = %(pid)s AND s.query_start = %(qs)s
           AND coalesce(s.backend_start, '-infinity') = %(bs)s
         ORDER BY s.sample_time
        """
    ).format(cls=cls, ev=ev, tiers=tiers_sql(True, target="t", begin="begin", end="end"))
    params = {
        "t": e["target_id"],
        "begin": e["query_start"],
        "end": e["last_seen"] + timedelta(seconds=1),
        "pid": e["pid"],
        "qs": e["query_start"],
        "bs": e["backend_start"],
    }
    with decoding(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q, params)
        return list(cur.fetchall())


def statistics(
    conn: psycopg.Connection, target_id: int, begin: datetime, end: datetime, *, top: int = 10
) -> dict[str, Any]:
    """Counts of executions by duration bucket, DB time by wait class, the top by elapsed."""
    p = {"t": target_id, "begin": begin, "end": end, "top": int(top)}
    where = "target_id = %(t)s AND query_start < %(end)s AND last_seen >= %(begin)s"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT bucket, count(*) AS executions, sum(elapsed_s)::float8 AS elapsed_s FROM ("
            " SELECT CASE WHEN elapsed_s < 10 THEN '< 10 s' WHEN elapsed_s < 60 THEN '10-60 s'"
            " WHEN elapsed_s < 600 THEN '1-10 min' WHEN elapsed_s < 3600 THEN '10-60 min'"
            " ELSE '>= 1 h' END AS bucket, CASE WHEN elapsed_s < 10 THEN 1"
            " WHEN elapsed_s < 60 THEN 2 WHEN elapsed_s < 600 THEN 3 WHEN elapsed_s < 3600"
            " THEN 4 ELSE 5 END AS o, elapsed_s"
            f" FROM opscore.sqlmon_executions WHERE {where}) b GROUP BY bucket, o ORDER BY o",
            p,
        )
        buckets = list(cur.fetchall())
        cur.execute(
            "SELECT w.key AS wait_class, sum(w.value::float8) AS seconds"
            f" FROM opscore.sqlmon_executions, jsonb_each_text(waits) w WHERE {where}"
            " GROUP BY w.key ORDER BY seconds DESC",
            p,
        )
        classes = list(cur.fetchall())
        cur.execute(
            f"SELECT {_COLUMNS} FROM opscore.sqlmon_executions WHERE {where}"
            " ORDER BY elapsed_s DESC, exec_id LIMIT %(top)s",
            p,
        )
        top_rows = list(cur.fetchall())
        cur.execute(
            "SELECT count(*) AS executions, count(*) FILTER (WHERE status = 'running') AS running,"
            " coalesce(sum(elapsed_s), 0)::float8 AS elapsed_s,"
            " coalesce(sum(db_time_s), 0)::float8 AS db_time_s"
            f" FROM opscore.sqlmon_executions WHERE {where}",
            p,
        )
        totals = dict(cur.fetchone() or {})
    return {"totals": totals, "by_duration": buckets, "by_wait_class": classes, "top": top_rows}


def purge(conn: psycopg.Connection, target_id: int | None, before: datetime) -> int:
    """Delete finished executions last seen before ``before``; the number deleted."""
    cur = conn.execute(
        "DELETE FROM opscore.sqlmon_executions WHERE status = 'done' AND last_seen < %s"
        " AND (%s::int IS NULL OR target_id = %s)",
        (before, target_id, target_id),
    )
    return cur.rowcount


def last_capture(conn: psycopg.Connection, target_id: int) -> datetime | None:
    row = conn.execute(
        "SELECT max(last_seen) FROM opscore.sqlmon_executions WHERE target_id = %s AND"
        " source = 'ash'",
        (target_id,),
    ).fetchone()
    return row[0] if row else None
