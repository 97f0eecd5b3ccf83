"""Repository side of connection poolers in front of targets (migration 0016)."""

from __future__ import annotations

import psycopg

__all__ = ["set_pooler", "get_pooler"]


def set_pooler(conn: psycopg.Connection, target_id: int, dsn: str | None) -> None:
    if dsn is None:
        conn.execute("DELETE FROM opscore.target_poolers WHERE target_id = %s", (target_id,))
        return
    conn.execute(
        "INSERT INTO opscore.target_poolers (target_id, dsn) VALUES (%s, %s) "
        "ON CONFLICT (target_id) DO UPDATE SET dsn = excluded.dsn, updated_at = now()",
        (target_id, dsn),
    )


def get_pooler(conn: psycopg.Connection, target_id: int) -> str | None:
    row = conn.execute(
        "SELECT dsn FROM opscore.target_poolers WHERE target_id = %s", (target_id,)
    ).fetchone()
    return None if row is None else str(row[0])
