"""The SQL Tuning Advisor's catalog reads of a target (read-only monitoring SQL in sql/)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .live import live_sql


def tables(conn: psycopg.Connection, names: list[str]) -> list[dict[str, Any]]:
    """Statistics state of the tables named (``schema.table``, quoted as needed)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(live_sql("sqltune_tables", conn.info.server_version), {"names": names})  # type: ignore[arg-type]
        return list(cur.fetchall())


def indexes(conn: psycopg.Connection, schema: str, table: str) -> list[dict[str, Any]]:
    """Valid indexes of ``schema.table`` with their key columns (expressions omitted)."""
    name = sql.Identifier(schema, table).as_string(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(live_sql("sqltune_indexes", conn.info.server_version), {"table": name})  # type: ignore[arg-type]
        return list(cur.fetchall())


def has_extension(conn: psycopg.Connection, name: str) -> tuple[bool, str | None]:
    """(created in this database, its version)."""
    row = conn.execute(
        "SELECT /* opscore */ extversion FROM pg_extension WHERE extname = %s", (name,)
    ).fetchone()
    return (row is not None, row[0] if row else None)


def column_values(conn: psycopg.Connection, pairs: list[tuple[str, str]]) -> dict:
    """(table, column) -> (sample values as text, where they come from), from pg_stats."""
    if not pairs:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            live_sql("sqltune_colstats", conn.info.server_version),  # type: ignore[arg-type]
            {"rels": [p[0] for p in pairs], "cols": [p[1] for p in pairs]},
        )
        return {(r["rel"], r["col"]): (r["vals"] or [], r["source"]) for r in cur.fetchall()}
