"""Reads and writes of the targets registry."""

from __future__ import annotations

import json

import psycopg
from psycopg.rows import dict_row

from ..errors import InvalidInput, UnknownTarget
from ..model.target import Target

__all__ = ["Target", "insert", "all_targets", "get", "get_by_id", "set_dsn", "delete"]


_COLS = "target_id, name, dsn, password_source, embedded, created_at, options, tags"


def insert(
    conn: psycopg.Connection,
    name: str,
    dsn: str,
    password_source: str,
    embedded: bool = False,
    options: dict | None = None,
) -> Target:
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"INSERT INTO opscore.targets (name, dsn, password_source, embedded, options) "
                f"VALUES (%s, %s, %s, %s, %s) RETURNING {_COLS}",
                (name, dsn, password_source, embedded, json.dumps(options or {})),
            )
            row = cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise InvalidInput(
            f"A target named {name!r} already exists.",
            f"Pick another name, or `opscore target remove {name}` first.",
        ) from None
    assert row is not None
    return Target(**row)


def all_targets(conn: psycopg.Connection) -> list[Target]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLS} FROM opscore.targets ORDER BY name")
        return [Target(**r) for r in cur.fetchall()]


def get(conn: psycopg.Connection, name: str) -> Target:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLS} FROM opscore.targets WHERE name = %s", (name,))
        row = cur.fetchone()
    if row is None:
        names = [t.name for t in all_targets(conn)]
        known = ", ".join(names) if names else "none registered yet"
        raise UnknownTarget(
            f"There is no target named {name!r} (known targets: {known}).",
            "List them with `opscore target list`; add one with `opscore target add NAME DSN`.",
        )
    return Target(**row)


def get_by_id(conn: psycopg.Connection, target_id: int) -> Target:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLS} FROM opscore.targets WHERE target_id = %s", (target_id,))
        row = cur.fetchone()
    if row is None:
        raise UnknownTarget(
            f"There is no target with id {target_id}.", "List targets with `opscore target list`."
        )
    return Target(**row)


def set_dsn(conn: psycopg.Connection, target_id: int, dsn: str) -> None:
    """Point a target at a new DSN (the embedded server moved to another port)."""
    with conn.transaction():
        conn.execute("UPDATE opscore.targets SET dsn = %s WHERE target_id = %s", (dsn, target_id))


def delete(conn: psycopg.Connection, name: str) -> Target:
    target = get(conn, name)
    with conn.transaction():
        conn.execute("DELETE FROM opscore.targets WHERE target_id = %s", (target.target_id,))
    return target
