"""Reads behind self-healing: the conditions a DBA heals by hand, each read from the catalog of
the target as it is now.

Read-only monitoring SQL (every statement starts with the ``/* opscore */`` marker); what is done
about a condition is decided in ``ops_core.analysis.healing`` and done by
``ops_core.targets.actions``. Sources that need an extension (amcheck, pgstattuple) say so when
it is missing instead of guessing.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from .rows import dict_rows

__all__ = [
    "blockers",
    "invalid_indexes",
    "index_health",
    "table_bloat",
    "table_bloat_measured",
    "wraparound",
    "oldest_tables",
    "sequences",
    "inactive_slots",
    "stale_statistics",
    "checksum_failures",
    "extension_installed",
    "btree_check",
    "data_directory",
]


#: sessions of the target's database that hold up others now, one row per blocker: its state
#: and transaction start, the sessions waiting on it (Lock waits whose pg_blocking_pids name
#: it). Other databases of the server are other targets: self-healing never acts on them.
BLOCKERS = """
/* opscore */
WITH waits AS (
    SELECT w.pid AS waiter, unnest(pg_blocking_pids(w.pid)) AS blocker, w.query_start
    FROM pg_stat_activity w
    WHERE w.wait_event_type = 'Lock'
), per_blocker AS (
    SELECT blocker, count(*)::int AS waiters,
           array_agg(DISTINCT waiter ORDER BY waiter) AS waiting_pids,
           min(query_start) AS oldest_waiter_start
    FROM waits GROUP BY blocker
)
SELECT b.pid, b.usename AS usename, b.datname AS datname,
       b.application_name, b.client_addr::text AS client_addr, b.state,
       b.xact_start, b.state_change, b.backend_xid::text AS backend_xid,
       left(b.query, 300) AS last_query,
       p.waiters, p.waiting_pids, p.oldest_waiter_start,
       clock_timestamp() AS sampled_at
FROM per_blocker p
JOIN pg_stat_activity b ON b.pid = p.blocker
WHERE b.backend_type = 'client backend' AND b.datname = current_database()
ORDER BY p.waiters DESC, b.pid
"""


def blockers(conn: psycopg.Connection) -> list[dict]:
    """One live sample of the client sessions that other sessions wait for (see BLOCKERS)."""
    return dict_rows(conn, BLOCKERS)


def invalid_indexes(conn: psycopg.Connection) -> list[dict]:
    """Indexes marked invalid (a failed CREATE INDEX CONCURRENTLY or REINDEX), except those a
    running CREATE INDEX / REINDEX is building right now (invalid until it finishes)."""
    return dict_rows(
        conn,
        """
/* opscore */
SELECT n.nspname AS schema, c.relname AS index, t.relname AS table,
       pg_relation_size(c.oid) AS bytes, i.indisready AS ready
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
  AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index p
                  WHERE p.index_relid = c.oid OR p.relid = t.oid)
ORDER BY 1, 2
""",
    )


def index_health(conn: psycopg.Connection) -> list[dict]:
    """Every user index of the database: size, scans since the statistics reset, valid/ready,
    whether it backs a constraint, its key columns (attnums, opclasses, expressions, predicate
    as text) so duplicates and prefixes can be judged, and its definition."""
    return dict_rows(
        conn,
        """
/* opscore */
SELECT n.nspname AS schema, c.relname AS index, t.relname AS table,
       pg_relation_size(c.oid) AS bytes, s.idx_scan AS scans,
       i.indisvalid AS valid, i.indisready AS ready, i.indisunique AS is_unique,
       i.indisprimary AS is_primary,
       EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = c.oid) AS backs_constraint,
       i.indkey::text AS keys, i.indclass::text AS opclasses,
       coalesce(pg_get_expr(i.indexprs, i.indrelid), '') AS expressions,
       coalesce(pg_get_expr(i.indpred, i.indrelid), '') AS predicate,
       am.amname AS method, pg_get_indexdef(c.oid) AS definition
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = c.relam
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = c.oid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY 1, 3, 2
""",
    )


def table_bloat(conn: psycopg.Connection, min_rows: int) -> list[dict]:
    """Dead-tuple share of each table with at least ``min_rows`` dead tuples, from the
    statistics collector (``pg_stat_user_tables``: an estimate, labelled so by the caller)."""
    return dict_rows(
        conn,
        """
/* opscore */
SELECT schemaname AS schema, relname AS table, n_live_tup AS live_rows, n_dead_tup AS dead_rows,
       round((n_dead_tup::numeric / greatest(n_live_tup + n_dead_tup, 1)) * 100, 1)::float8
           AS dead_pct,
       pg_total_relation_size(relid) AS bytes,
       last_vacuum, last_autovacuum
FROM pg_stat_user_tables
WHERE n_dead_tup >= %s
ORDER BY n_dead_tup DESC
""",
        (min_rows,),
    )


#: at most this many tables measured with pgstattuple_approx per check (it reads the pages
#: the visibility map does not say all-visible: bounded work on a large database)
MEASURED_TABLES = 20


def table_bloat_measured(conn: psycopg.Connection, min_rows: int) -> tuple[list[dict], str]:
    """Table bloat and how it was measured: with pgstattuple created in the database, each table
    the statistics collector counts ``min_rows`` dead tuples in (or half that: its counters lag)
    is measured with ``pgstattuple_approx`` (dead tuples counted on the pages that are not
    all-visible, the others estimated from the free space map), its dead rows and share
    replaced by the measured ones; without it the collector's counts, labelled an estimate."""
    rows = table_bloat(conn, max(1, min_rows // 2))
    if not extension_installed(conn, "pgstattuple"):
        return (
            [r for r in rows if r["dead_rows"] >= min_rows],
            "estimate from pg_stat_user_tables dead-row counts (pgstattuple is not created in "
            "this database: CREATE EXTENSION pgstattuple to measure it)",
        )
    out = []
    for r in rows[:MEASURED_TABLES]:
        try:
            m = dict_rows(
                conn,
                "/* opscore */ SELECT approx_tuple_count::int8 AS live, dead_tuple_count::int8"
                " AS dead, dead_tuple_percent::float8 AS dead_len_pct, approx_free_percent::float8"
                " AS free_pct, scanned_percent::float8 AS scanned_pct "
                "FROM pgstattuple_approx(%s::regclass)",
                (sql.Identifier(r["schema"], r["table"]).as_string(conn),),
            )[0]
        except psycopg.Error as exc:  # no privilege, or the table went away: keep the estimate
            out.append({**r, "measured": False, "why": str(exc).strip().splitlines()[0]})
            continue
        dead_pct = round(100.0 * m["dead"] / max(m["live"] + m["dead"], 1), 1)
        out.append({**r, "stats_dead_rows": r["dead_rows"], "dead_rows": m["dead"],
                    "live_rows": m["live"], "dead_pct": dead_pct, "measured": True,
                    "dead_bytes_pct": m["dead_len_pct"], "free_pct": m["free_pct"],
                    "scanned_pct": m["scanned_pct"]})  # fmt: skip
    return (
        [r for r in out if r["dead_rows"] >= min_rows],
        "measured with pgstattuple_approx (pages not all-visible scanned)",
    )


def wraparound(conn: psycopg.Connection) -> list[dict]:
    """Per database: the age of its oldest unfrozen transaction id and multixact, beside
    autovacuum_freeze_max_age and autovacuum_multixact_freeze_max_age."""
    return dict_rows(
        conn,
        """
/* opscore */
SELECT datname, age(datfrozenxid)::int8 AS xid_age, mxid_age(datminmxid)::int8 AS mxid_age,
       current_setting('autovacuum_freeze_max_age')::int8 AS freeze_max_age,
       current_setting('autovacuum_multixact_freeze_max_age')::int8 AS mxid_freeze_max_age,
       datname = current_database() AS is_current
FROM pg_database
WHERE datallowconn AND datconnlimit <> -2
ORDER BY age(datfrozenxid) DESC
""",
    )


def oldest_tables(conn: psycopg.Connection, limit: int) -> list[dict]:
    """The tables of the current database holding back its frozen xid horizon."""
    return dict_rows(
        conn,
        """
/* opscore */
SELECT n.nspname AS schema, c.relname AS table, age(c.relfrozenxid)::int8 AS xid_age,
       pg_total_relation_size(c.oid) AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 't') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY age(c.relfrozenxid) DESC
LIMIT %s
""",
        (limit,),
    )


def sequences(conn: psycopg.Connection) -> list[dict]:
    """Each sequence's last value against the end it counts toward (ascending: max_value,
    descending: min_value), as the share used. Sequences never called have no last value."""
    return dict_rows(
        conn,
        """
/* opscore */
SELECT schemaname AS schema, sequencename AS sequence, data_type::text AS data_type,
       last_value, min_value, max_value, increment_by, cycle,
       CASE WHEN last_value IS NULL THEN 0
            WHEN increment_by > 0
                THEN (last_value::numeric - min_value) / nullif(max_value::numeric - min_value, 0)
            ELSE (max_value::numeric - last_value) / nullif(max_value::numeric - min_value, 0)
       END::float8 AS used_fraction
FROM pg_sequences
ORDER BY used_fraction DESC NULLS LAST
""",
    )


def inactive_slots(conn: psycopg.Connection) -> list[dict]:
    """Replication slots no client is using, with the WAL each keeps on the server."""
    return dict_rows(
        conn,
        """
/* opscore */
SELECT slot_name, slot_type, database, active,
       CASE WHEN pg_is_in_recovery() OR restart_lsn IS NULL THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8 END AS retained_bytes
FROM pg_replication_slots
WHERE NOT active
ORDER BY retained_bytes DESC NULLS LAST
""",
    )


def stale_statistics(conn: psycopg.Connection, min_changes: int, fraction: float) -> list[dict]:
    """Tables changed since their last ANALYZE by more than ``fraction`` of their rows (and at
    least ``min_changes`` rows): the planner estimates from statistics that no longer hold."""
    return dict_rows(
        conn,
        """
/* opscore */
SELECT s.schemaname AS schema, s.relname AS table, s.n_mod_since_analyze AS changed_rows,
       greatest(c.reltuples, 0)::int8 AS rows_at_analyze, s.n_live_tup AS live_rows,
       s.last_analyze, s.last_autoanalyze
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.n_mod_since_analyze >= %s
  AND s.n_mod_since_analyze > %s * greatest(c.reltuples, 0)
ORDER BY s.n_mod_since_analyze DESC
""",
        (min_changes, fraction),
    )


def checksum_failures(conn: psycopg.Connection) -> dict[str, Any]:
    """Whether data checksums are on, and the failures each database counted."""
    on = conn.execute("/* opscore */ SELECT current_setting('data_checksums')").fetchone()
    rows = dict_rows(
        conn,
        """
/* opscore */
SELECT coalesce(datname, '(shared)') AS datname, checksum_failures, checksum_last_failure
FROM pg_stat_database WHERE coalesce(checksum_failures, 0) > 0
""",
    )
    return {"data_checksums": (on[0] if on else "off") == "on", "failures": rows}


def extension_installed(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute(
        "/* opscore */ SELECT EXISTS (SELECT FROM pg_extension WHERE extname = %s)", (name,)
    ).fetchone()
    return bool(row and row[0])


def btree_check(conn: psycopg.Connection, schema: str, index: str) -> str | None:
    """amcheck's ``bt_index_check`` of one B-tree index (AccessShareLock: reads only). None
    when it passed, else the error it raised (corruption reported as an error, SQLSTATE XX001
    or XX002). Runs in a savepoint-free autocommit call: the caller's session must allow it."""
    try:
        conn.execute(
            sql.SQL("/* opscore */ SELECT bt_index_check({}::regclass)").format(
                sql.Literal(sql.Identifier(schema, index).as_string(conn))
            )
        )
    except psycopg.errors.QueryCanceled:
        raise
    except psycopg.Error as exc:
        state = exc.sqlstate or ""
        return f"{state}: {str(exc).strip()}"
    return None


def data_directory(conn: psycopg.Connection) -> str | None:
    """The server's data directory, or None for a role that may not read it."""
    try:
        row = conn.execute(
            "/* opscore */ SELECT current_setting('data_directory', true)"
        ).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    return row[0] if row and row[0] else None
