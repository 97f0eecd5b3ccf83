"""SQL Tuning Advisor tasks, their statements and recommendations, and SQL profiles in the
repository (migration 0015)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

_TASK = (
    "task_id, target_id, name, scope, database, clone, status, progress, error, created_at, "
    "started_at, finished_at"
)
_REC = (
    "rec_id, task_id, seq, type, sql, rationale, method, before_ms, after_ms, cost_before, "
    "cost_after, measured_speedup, why_not, evidence, action_id, profile_id"
)
_PROFILE = (
    "profile_id, target_id, name, query_id, database, sql, settings, before_ms, after_ms, "
    "measured_speedup, rec_id, enabled, created_at"
)


def _all(conn: psycopg.Connection, q: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q, params)  # type: ignore[arg-type]
        return list(cur.fetchall())


def create_task(
    conn: psycopg.Connection,
    target_id: int,
    *,
    name: str | None,
    scope: dict[str, Any],
    database: str | None,
    clone: str | None,
    statements: list[dict[str, Any]],
) -> int:
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO opscore.sqltune_tasks (target_id, name, scope, database, clone, status)"
            " VALUES (%s, %s, %s, %s, %s, 'created') RETURNING task_id",
            (target_id, name, Jsonb(scope), database, clone),
        ).fetchone()
        assert row is not None
        for i, s in enumerate(statements, 1):
            conn.execute(
                "INSERT INTO opscore.sqltune_statements (task_id, seq, query_id, database, sql)"
                " VALUES (%s, %s, %s, %s, %s)",
                (row[0], i, s.get("query_id"), s.get("database"), s["sql"]),
            )
    return int(row[0])


def tasks(conn: psycopg.Connection, target_id: int | None) -> list[dict[str, Any]]:
    return _all(
        conn,
        f"SELECT {_TASK}, (SELECT count(*) FROM opscore.sqltune_statements s"
        "  WHERE s.task_id = t.task_id) AS statements,"
        " (SELECT count(*) FROM opscore.sqltune_recommendations r"
        "  WHERE r.task_id = t.task_id) AS recommendations"
        " FROM opscore.sqltune_tasks t WHERE %(t)s::int IS NULL OR target_id = %(t)s"
        " ORDER BY task_id DESC",
        {"t": target_id},
    )


def task(conn: psycopg.Connection, task_id: int) -> dict[str, Any] | None:
    rows = _all(conn, f"SELECT {_TASK} FROM opscore.sqltune_tasks WHERE task_id = %s", (task_id,))
    return rows[0] if rows else None


def statements(conn: psycopg.Connection, task_id: int) -> list[dict[str, Any]]:
    return _all(
        conn,
        "SELECT seq, query_id, database, sql, findings FROM opscore.sqltune_statements"
        " WHERE task_id = %s ORDER BY seq",
        (task_id,),
    )


def set_status(
    conn: psycopg.Connection,
    task_id: int,
    status: str,
    *,
    progress: str | None = None,
    error: str | None = None,
) -> None:
    conn.execute(
        "UPDATE opscore.sqltune_tasks SET status = %s, progress = coalesce(%s, progress),"
        " error = %s,"
        " started_at = CASE WHEN %s = 'running' THEN now() ELSE started_at END,"
        " finished_at = CASE WHEN %s IN ('done', 'failed') THEN now() END"
        " WHERE task_id = %s",
        (status, progress, error, status, status, task_id),
    )


def set_progress(conn: psycopg.Connection, task_id: int, progress: str) -> None:
    conn.execute(
        "UPDATE opscore.sqltune_tasks SET progress = %s WHERE task_id = %s", (progress, task_id)
    )


def store_statement(
    conn: psycopg.Connection,
    task_id: int,
    seq: int,
    findings: dict[str, Any],
    recommendations: list[dict[str, Any]],
) -> None:
    with conn.transaction():
        conn.execute(
            "DELETE FROM opscore.sqltune_recommendations WHERE task_id = %s AND seq = %s",
            (task_id, seq),
        )
        conn.execute(
            "UPDATE opscore.sqltune_statements SET findings = %s WHERE task_id = %s AND seq = %s",
            (Jsonb(findings), task_id, seq),
        )
        for r in recommendations:
            conn.execute(
                "INSERT INTO opscore.sqltune_recommendations (task_id, seq, type, sql, rationale,"
                " method, before_ms, after_ms, cost_before, cost_after, measured_speedup, why_not,"
                " evidence) VALUES (%(task)s, %(seq)s, %(type)s, %(sql)s, %(rationale)s,"
                " %(method)s, %(before_ms)s, %(after_ms)s, %(cost_before)s, %(cost_after)s,"
                " %(measured_speedup)s, %(why_not)s, %(evidence)s)",
                {**r, "task": task_id, "seq": seq, "evidence": Jsonb(r.get("evidence") or {})},
            )


def recommendations(conn: psycopg.Connection, task_id: int) -> list[dict[str, Any]]:
    return _all(
        conn,
        f"SELECT {_REC} FROM opscore.sqltune_recommendations WHERE task_id = %s"
        " ORDER BY seq, rec_id",
        (task_id,),
    )


def recommendation(conn: psycopg.Connection, rec_id: int) -> dict[str, Any] | None:
    rows = _all(
        conn, f"SELECT {_REC} FROM opscore.sqltune_recommendations WHERE rec_id = %s", (rec_id,)
    )
    return rows[0] if rows else None


def mark_recommendation(
    conn: psycopg.Connection,
    rec_id: int,
    *,
    action_id: int | None = None,
    profile_id: int | None = None,
) -> None:
    conn.execute(
        "UPDATE opscore.sqltune_recommendations SET action_id = coalesce(%s, action_id),"
        " profile_id = coalesce(%s, profile_id) WHERE rec_id = %s",
        (action_id, profile_id, rec_id),
    )


def delete_task(conn: psycopg.Connection, task_id: int) -> int:
    return conn.execute("DELETE FROM opscore.sqltune_tasks WHERE task_id = %s", (task_id,)).rowcount


def all_misestimates(conn: psycopg.Connection, target_id: int) -> list[dict[str, Any]]:
    """Misestimates found by the executed tuning runs of a target's tasks, newest first."""
    return _all(
        conn,
        "SELECT t.task_id, s.seq, s.database, m.*"
        " FROM opscore.sqltune_tasks t"
        " JOIN opscore.sqltune_statements s ON s.task_id = t.task_id"
        " CROSS JOIN LATERAL jsonb_to_recordset(coalesce(s.findings->'misestimates', '[]'))"
        '   AS m(schema text, "table" text, node text, filter text, estimated_rows float8,'
        "        actual_rows float8, factor float8)"
        " WHERE t.target_id = %s ORDER BY t.task_id DESC, m.factor DESC",
        (target_id,),
    )


# ------------------------------------------------------------------------------ profiles
def create_profile(conn: psycopg.Connection, target_id: int, p: dict[str, Any]) -> int:
    row = conn.execute(
        "INSERT INTO opscore.sql_profiles (target_id, name, query_id, database, sql, settings,"
        " before_ms, after_ms, measured_speedup, rec_id) VALUES (%(t)s, %(name)s, %(query_id)s,"
        " %(database)s, %(sql)s, %(settings)s, %(before_ms)s, %(after_ms)s,"
        " %(measured_speedup)s, %(rec_id)s) RETURNING profile_id",
        {**p, "t": target_id, "settings": Jsonb(p["settings"])},
    ).fetchone()
    assert row is not None
    return int(row[0])


def profiles(conn: psycopg.Connection, target_id: int | None) -> list[dict[str, Any]]:
    return _all(
        conn,
        f"SELECT {_PROFILE} FROM opscore.sql_profiles WHERE %(t)s::int IS NULL OR"
        " target_id = %(t)s ORDER BY profile_id",
        {"t": target_id},
    )


def profile(conn: psycopg.Connection, profile_id: int) -> dict[str, Any] | None:
    rows = _all(
        conn, f"SELECT {_PROFILE} FROM opscore.sql_profiles WHERE profile_id = %s", (profile_id,)
    )
    return rows[0] if rows else None


def set_profile_enabled(conn: psycopg.Connection, profile_id: int, enabled: bool) -> int:
    return conn.execute(
        "UPDATE opscore.sql_profiles SET enabled = %s WHERE profile_id = %s",
        (enabled, profile_id),
    ).rowcount


def drop_profile(conn: psycopg.Connection, profile_id: int) -> int:
    return conn.execute(
        "DELETE FROM opscore.sql_profiles WHERE profile_id = %s", (profile_id,)
    ).rowcount
