"""Repository side of dashboards (migration 0016)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import InvalidInput, NotFound

__all__ = ["insert", "insert_if_missing", "get", "all_dashboards", "update", "delete"]

_COLS = "dashboard_id, name, title, description, target, panels, builtin, created_at, updated_at"


def _one(conn: psycopg.Connection, q: str, params: tuple) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q, params)
        return cur.fetchone()


def insert_if_missing(
    conn: psycopg.Connection,
    name: str,
    title: str,
    description: str,
    target: str | None,
    panels: list[dict[str, Any]],
    builtin: bool,
) -> None:
    conn.execute(
        "INSERT INTO opscore.dashboards (name, title, description, target, panels, builtin) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
        (name, title, description, target, Jsonb(panels), builtin),
    )


def insert(
    conn: psycopg.Connection,
    name: str,
    title: str,
    description: str,
    target: str | None,
    panels: list[dict[str, Any]],
) -> dict[str, Any]:
    row = _one(
        conn,
        f"""INSERT INTO opscore.dashboards (name, title, description, target, panels)
            VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING {_COLS}""",
        (name, title, description, target, Jsonb(panels)),
    )
    if row is None:
        raise InvalidInput(
            f"A dashboard {name!r} exists already.", "Pick another name or update it."
        )
    return row


def get(conn: psycopg.Connection, name: str) -> dict[str, Any]:
    row = _one(conn, f"SELECT {_COLS} FROM opscore.dashboards WHERE name = %s", (name,))
    if row is None:
        raise NotFound(f"No dashboard {name!r}.", "List them with `opscore dashboard list`.")
    return row


def all_dashboards(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLS} FROM opscore.dashboards ORDER BY builtin DESC, name")
        return list(cur.fetchall())


def update(
    conn: psycopg.Connection,
    name: str,
    title: str | None,
    panels: list[dict[str, Any]] | None,
    description: str | None,
    target: str | None,
) -> dict[str, Any]:
    get(conn, name)
    row = _one(
        conn,
        f"""UPDATE opscore.dashboards SET title = coalesce(%s, title),
                   panels = coalesce(%s, panels), description = coalesce(%s, description),
                   target = coalesce(%s, target), updated_at = now()
             WHERE name = %s RETURNING {_COLS}""",
        (title, None if panels is None else Jsonb(panels), description, target, name),
    )
    assert row is not None
    return row


def delete(conn: psycopg.Connection, name: str) -> None:
    conn.execute("DELETE FROM opscore.dashboards WHERE name = %s", (name,))
