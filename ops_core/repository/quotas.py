"""Repository side of quotas (migration 0016): definitions with their latest state, and the
events of each (breaches, enforcement, reversal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import NotFound

__all__ = [
    "QuotaRow",
    "upsert",
    "get",
    "all_for",
    "delete",
    "put_state",
    "set_enforced",
    "add_event",
    "events",
    "worst_usage",
]


@dataclass
class QuotaRow:
    quota_id: int
    target_id: int
    name: str
    scope: str
    object: str
    metric: str
    soft_limit: float | None
    hard_limit: float | None
    enforce: bool
    created_at: datetime
    updated_at: datetime
    status: str
    measured: float | None
    measured_at: datetime | None
    reason: str | None
    enforced_action_id: int | None
    enforced_at: datetime | None
    enforced_before: dict[str, Any] | None = field(default=None)


_COLS = (
    "quota_id, target_id, name, scope, object, metric, soft_limit, hard_limit, enforce, "
    "created_at, updated_at, status, measured, measured_at, reason, enforced_action_id, "
    "enforced_at, enforced_before"
)


def _one(conn: psycopg.Connection, q: str, params: tuple) -> QuotaRow | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q, params)
        row = cur.fetchone()
    return None if row is None else QuotaRow(**row)


def upsert(
    conn: psycopg.Connection,
    target_id: int,
    name: str,
    scope: str,
    obj: str,
    metric: str,
    soft: float | None,
    hard: float | None,
    enforce: bool,
) -> QuotaRow:
    """Create the quota, or change its definition (its state is kept until the next
    evaluation)."""
    row = _one(
        conn,
        f"""INSERT INTO opscore.quotas (target_id, name, scope, object, metric, soft_limit,
                   hard_limit, enforce)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (target_id, name) DO UPDATE SET scope = excluded.scope,
                   object = excluded.object, metric = excluded.metric,
                   soft_limit = excluded.soft_limit, hard_limit = excluded.hard_limit,
                   enforce = excluded.enforce, updated_at = now()
            RETURNING {_COLS}""",
        (target_id, name, scope, obj, metric, soft, hard, enforce),
    )
    assert row is not None
    return row


def get(conn: psycopg.Connection, target_id: int, name: str) -> QuotaRow:
    row = _one(
        conn,
        f"SELECT {_COLS} FROM opscore.quotas WHERE target_id = %s AND name = %s",
        (target_id, name),
    )
    if row is None:
        raise NotFound(
            f"No quota {name!r} on this target.", "List them with `opscore resource quota list`."
        )
    return row


def all_for(conn: psycopg.Connection, target_id: int | None) -> list[QuotaRow]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_COLS} FROM opscore.quotas WHERE %(t)s::int IS NULL OR target_id = %(t)s "
            "ORDER BY target_id, name",
            {"t": target_id},
        )
        return [QuotaRow(**r) for r in cur.fetchall()]


def delete(conn: psycopg.Connection, quota_id: int) -> None:
    conn.execute("DELETE FROM opscore.quotas WHERE quota_id = %s", (quota_id,))


def put_state(
    conn: psycopg.Connection,
    quota_id: int,
    status: str,
    measured: float | None,
    reason: str | None,
) -> None:
    conn.execute(
        "UPDATE opscore.quotas SET status = %s, measured = %s, measured_at = now(), "
        "reason = %s WHERE quota_id = %s",
        (status, measured, reason, quota_id),
    )


def set_enforced(
    conn: psycopg.Connection,
    quota_id: int,
    action_id: int | None,
    before: dict[str, Any] | None,
) -> None:
    """Record an enforcement in force (``before``: what to put back), or clear it (None)."""
    conn.execute(
        "UPDATE opscore.quotas SET enforced_action_id = %s, enforced_before = %s, "
        "enforced_at = CASE WHEN %s::bigint IS NULL THEN NULL ELSE now() END "
        "WHERE quota_id = %s",
        (action_id, None if before is None else Jsonb(before), action_id, quota_id),
    )


def add_event(
    conn: psycopg.Connection,
    quota_id: int,
    event: str,
    measured: float | None,
    message: str = "",
    action_id: int | None = None,
) -> None:
    conn.execute(
        "INSERT INTO opscore.quota_events (quota_id, event, measured, action_id, message) "
        "VALUES (%s, %s, %s, %s, %s)",
        (quota_id, event, measured, action_id, message),
    )


def events(conn: psycopg.Connection, quota_id: int, limit: int = 50) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT at, event, measured, action_id, message FROM opscore.quota_events "
            "WHERE quota_id = %s ORDER BY event_id DESC LIMIT %s",
            (quota_id, limit),
        )
        return list(cur.fetchall())


def worst_usage(conn: psycopg.Connection, target_id: int) -> dict[str, Any] | None:
    """The evaluated quota of a target nearest its soft limit (else its hard limit), as a
    percentage of it; None when the target has no evaluated quota."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT name, measured, coalesce(soft_limit, hard_limit) AS lim,
                      100.0 * measured / nullif(coalesce(soft_limit, hard_limit), 0) AS pct
                 FROM opscore.quotas
                WHERE target_id = %s AND measured IS NOT NULL
                ORDER BY measured / nullif(coalesce(soft_limit, hard_limit), 0) DESC NULLS LAST,
                         measured DESC
                LIMIT 1""",
            (target_id,),
        )
        return cur.fetchone()
