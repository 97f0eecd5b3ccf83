"""Repository side of self-healing: the corruption checks (migration 0021)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

__all__ = ["CorruptionCheck", "save_corruption_check", "corruption_checks"]


@dataclass
class CorruptionCheck:
    target_id: int
    started_at: datetime
    finished_at: datetime
    method: str
    available: bool
    checked: int
    skipped: int
    corrupt: int
    results: list[dict[str, Any]] = field(default_factory=list)
    check_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def save_corruption_check(conn: psycopg.Connection, check: CorruptionCheck) -> int:
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO opscore.corruption_checks (target_id, started_at, finished_at, method, "
            "available, checked, skipped, corrupt, results) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING check_id",
            (
                check.target_id,
                check.started_at,
                check.finished_at,
                check.method,
                check.available,
                check.checked,
                check.skipped,
                check.corrupt,
                Jsonb(check.results),
            ),
        ).fetchone()
    assert row is not None
    return int(row[0])


def corruption_checks(
    conn: psycopg.Connection, target_id: int, limit: int
) -> list[CorruptionCheck]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT check_id, target_id, started_at, finished_at, method, available, checked, "
            "skipped, corrupt, results FROM opscore.corruption_checks WHERE target_id = %s "
            "ORDER BY started_at DESC, check_id DESC LIMIT %s",
            (target_id, limit),
        )
        return [CorruptionCheck(**r) for r in cur.fetchall()]
