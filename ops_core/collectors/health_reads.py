"""Live reads for alerts, health and the Prometheus exporter: one cheap row about a target now
(``sql/alert_metrics``), and the free space of its data directory when it is on this host.

Read-only monitoring SQL; nothing here writes to a target."""

from __future__ import annotations

import shutil
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .live import live_sql

SOURCE = "alert_metrics"


def server_reading(conn: psycopg.Connection) -> dict[str, Any]:
    """The row of ``sql/alert_metrics`` for this server (see the file for the columns)."""
    q = live_sql(SOURCE, conn.info.server_version)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q)
        row = cur.fetchone()
    return dict(row or {})


def data_disk(data_directory: str | None) -> dict[str, Any] | None:
    """Total/used/free bytes of the file system holding ``data_directory`` (None when it is
    not readable from here: a remote server, or a role that may not see the setting)."""
    if not data_directory:
        return None
    try:
        usage = shutil.disk_usage(data_directory)
    except OSError:
        return None
    return {"total_bytes": usage.total, "used_bytes": usage.used, "free_bytes": usage.free}
