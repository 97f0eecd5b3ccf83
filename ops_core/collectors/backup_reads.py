"""Read-only target reads the backup service needs (server facts, WAL position, slots).

Kept here so ``ops_core.api`` holds no SQL; every statement carries the opscore marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True)
class BackupServerFacts:
    version_num: int
    summarize_wal: bool | None  # None: the setting does not exist (before PostgreSQL 17)
    wal_segment_size: int | None


def server_facts(conn: psycopg.Connection) -> BackupServerFacts:
    row = conn.execute(
        "/* opscore */ SELECT current_setting('server_version_num')::int, "
        "current_setting('summarize_wal', true), "
        "(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')"
    ).fetchone()
    assert row is not None
    return BackupServerFacts(
        version_num=row[0],
        summarize_wal=None if row[1] is None else row[1] == "on",
        wal_segment_size=row[2],
    )


def server_version_num(conn: psycopg.Connection) -> int:
    row = conn.execute("/* opscore */ SELECT current_setting('server_version_num')::int").fetchone()
    return int(row[0]) if row else 0


def current_wal_lsn(conn: psycopg.Connection) -> str:
    row = conn.execute("/* opscore */ SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def physical_slots(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Physical replication slots with the WAL each holds back (bytes)."""
    rows = conn.execute(
        "/* opscore */ SELECT slot_name, active, restart_lsn::text, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
        "FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY slot_name"
    ).fetchall()
    return [
        {"slot": r[0], "active": r[1], "restart_lsn": r[2], "retained_bytes": r[3]} for r in rows
    ]
