"""One helper the collectors share: a read-only query's rows as dicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

__all__ = ["dict_rows"]


def dict_rows(
    conn: psycopg.Connection, query: Any, params: Sequence[Any] | Mapping[str, Any] = ()
) -> list[dict[str, Any]]:
    """Run ``query`` with ``params`` bound and return its rows as dicts."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return [dict(r) for r in cur.fetchall()]
