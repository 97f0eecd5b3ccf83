"""Repository side of target actions: the policy per (target, feature) and the action journal
(migration 0008). Written by ops_core.targets.actions only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import NotFound

__all__ = [
    "JournalEntry",
    "get_mode",
    "set_mode",
    "policies",
    "start",
    "finish",
    "entries",
    "entry",
]


@dataclass
class JournalEntry:
    action_id: int
    target_id: int
    feature: str
    mode: str
    requested_by: str
    what: str
    why: str
    evidence: dict[str, Any]
    sql: str
    params: list[Any]
    undo_sql: str | None
    before: Any
    after: Any
    outcome: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["started_at"] = self.started_at.isoformat()
        d["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return d


_COLS = (
    "action_id, target_id, feature, mode, requested_by, what, why, evidence, sql, params, "
    "undo_sql, before, after, outcome, error, started_at, finished_at"
)


def get_mode(conn: psycopg.Connection, target_id: int, feature: str) -> str | None:
    row = conn.execute(
        "SELECT mode FROM opscore.action_policies WHERE target_id = %s AND feature = %s",
        (target_id, feature),
    ).fetchone()
    return row[0] if row else None


def set_mode(conn: psycopg.Connection, target_id: int, feature: str, mode: str, by: str) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO opscore.action_policies (target_id, feature, mode, updated_by) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (target_id, feature) DO UPDATE "
            "SET mode = excluded.mode, updated_by = excluded.updated_by, updated_at = now()",
            (target_id, feature, mode, by),
        )


def policies(conn: psycopg.Connection, target_id: int) -> dict[str, str]:
    rows = conn.execute(
        "SELECT feature, mode FROM opscore.action_policies WHERE target_id = %s", (target_id,)
    ).fetchall()
    return dict(rows)


def start(
    conn: psycopg.Connection,
    *,
    target_id: int,
    feature: str,
    mode: str,
    requested_by: str,
    what: str,
    why: str,
    evidence: dict[str, Any],
    sql: str,
    params: list[Any],
    undo_sql: str | None,
    outcome: str,
) -> int:
    """Journal a request in its own committed transaction (a crash mid-action leaves
    'started', never nothing)."""
    with conn.transaction():
        got = conn.execute(
            "INSERT INTO opscore.action_journal (target_id, feature, mode, requested_by, what, "
            "why, evidence, sql, params, undo_sql, outcome, finished_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "CASE WHEN %s = 'started' THEN NULL ELSE now() END) RETURNING action_id",
            (
                target_id,
                feature,
                mode,
                requested_by,
                what,
                why,
                Jsonb(evidence),
                sql,
                Jsonb(params),
                undo_sql,
                outcome,
                outcome,
            ),
        ).fetchone()
    assert got is not None
    return int(got[0])


def finish(
    conn: psycopg.Connection,
    action_id: int,
    outcome: str,
    *,
    before: Any = None,
    after: Any = None,
    error: str | None = None,
) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE opscore.action_journal SET outcome = %s, before = coalesce(%s, before), "
            "after = %s, error = %s, finished_at = now() WHERE action_id = %s",
            (
                outcome,
                None if before is None else Jsonb(before),
                None if after is None else Jsonb(after),
                error,
                action_id,
            ),
        )


def entries(
    conn: psycopg.Connection,
    target_id: int | None = None,
    feature: str | None = None,
    limit: int = 100,
    requested_by: str | None = None,
) -> list[JournalEntry]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_COLS} FROM opscore.action_journal "
            "WHERE (%(t)s::int IS NULL OR target_id = %(t)s) "
            "AND (%(f)s::text IS NULL OR feature = %(f)s) "
            "AND (%(by)s::text IS NULL OR requested_by = %(by)s) "
            "ORDER BY action_id DESC LIMIT %(n)s",
            {"t": target_id, "f": feature, "n": limit, "by": requested_by},
        )
        return [JournalEntry(**r) for r in cur.fetchall()]


def entry(conn: psycopg.Connection, action_id: int) -> JournalEntry:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_COLS} FROM opscore.action_journal WHERE action_id = %s", (action_id,)
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(
            f"There is no action with id {action_id}.", "List actions with `opscore actions`."
        )
    return JournalEntry(**row)
