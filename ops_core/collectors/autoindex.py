"""Auto-indexing's catalog reads of a target (read-only monitoring SQL in sql/autoindex_*):
column statistics, table size and write activity, the usage of the indexes it created, the
planner's cost constants."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from .live import live_sql

__all__ = ["columns", "tables", "usage", "cost_settings"]


def _rows(conn: psycopg.Connection, source: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(live_sql(source, conn.info.server_version), params)  # type: ignore[arg-type]
        return list(cur.fetchall())


def columns(conn: psycopg.Connection, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """(table as quoted schema.table, column) -> its pg_stats figures (None where unanalysed)."""
    if not pairs:
        return {}
    rows = _rows(
        conn, "autoindex_columns", {"rels": [p[0] for p in pairs], "cols": [p[1] for p in pairs]}
    )
    return {(r["rel"], r["col"]): r for r in rows}


def tables(conn: psycopg.Connection, names: list[str]) -> dict[str, dict]:
    """Quoted schema.table -> rows, pages, write counters and valid index count."""
    if not names:
        return {}
    return {r["rel"]: r for r in _rows(conn, "autoindex_tables", {"names": names})}


def usage(conn: psycopg.Connection, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """(schema, index) -> valid, bytes, idx_scan; an index that no longer exists is absent."""
    if not pairs:
        return {}
    rows = _rows(
        conn,
        "autoindex_usage",
        {"schemas": [p[0] for p in pairs], "indexes": [p[1] for p in pairs]},
    )
    return {(r["schema"], r["index"]): r for r in rows}


def cost_settings(conn: psycopg.Connection) -> dict[str, float]:
    """The planner's cost constants (for the index cost estimate without hypopg)."""
    names = ["seq_page_cost", "random_page_cost", "cpu_tuple_cost", "cpu_index_tuple_cost",
             "cpu_operator_cost"]  # fmt: skip
    rows = conn.execute(
        "SELECT /* opscore */ name, setting::float8 FROM pg_settings WHERE name = ANY(%s)",
        (names,),
    ).fetchall()
    return {n: float(v) for n, v in rows}
