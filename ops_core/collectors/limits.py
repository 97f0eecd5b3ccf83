"""The connection limits in force on a target now (``sql/limits``), for the capacity forecasts
of a history whose snapshots did not capture them. Read-only monitoring SQL."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from . import catalog


def read_limits(conn: psycopg.Connection) -> dict[str, Any]:
    """max_connections, superuser_reserved_connections and reserved_connections (NULL before
    PostgreSQL 16, where it does not exist) of the server behind ``conn``."""
    q = catalog.query("limits", conn.info.server_version)
    assert q is not None  # every supported version has the file
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q)
        row = cur.fetchone()
    return dict(row or {})
