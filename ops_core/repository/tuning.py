"""Repository side of self-tuning: pinned parameters and the trials of changes (migration
0024)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

__all__ = [
    "TuningTrial",
    "overrides",
    "set_override",
    "start_trial",
    "finish_trial",
    "trials",
]


@dataclass
class TuningTrial:
    trial_id: int
    target_id: int
    parameter: str
    scope: str
    database: str | None
    old_value: str | None
    new_value: str
    reason: str
    action_id: int | None
    applied_at: datetime
    status: str
    before_ms_per_call: float | None
    after_ms_per_call: float | None
    statements: int | None
    evaluated_at: datetime | None
    rollback_action_id: int | None
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def overrides(conn: psycopg.Connection, target_id: int) -> dict[str, str]:
    rows = conn.execute(
        "SELECT parameter, value FROM opscore.tuning_overrides WHERE target_id = %s",
        (target_id,),
    ).fetchall()
    return dict(rows)


def set_override(
    conn: psycopg.Connection, target_id: int, parameter: str, value: str | None, by: str
) -> None:
    with conn.transaction():
        if value is None:
            conn.execute(
                "DELETE FROM opscore.tuning_overrides WHERE target_id = %s AND parameter = %s",
                (target_id, parameter),
            )
        else:
            conn.execute(
                "INSERT INTO opscore.tuning_overrides (target_id, parameter, value, pinned_by) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (target_id, parameter) DO UPDATE SET "
                "value = excluded.value, pinned_by = excluded.pinned_by, pinned_at = now()",
                (target_id, parameter, value, by),
            )


def start_trial(conn: psycopg.Connection, **row: Any) -> int:
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    with conn.transaction():
        got = conn.execute(
            f"INSERT INTO opscore.tuning_trials ({cols}) VALUES ({marks}) RETURNING trial_id",
            tuple(row.values()),
        ).fetchone()
    assert got is not None
    return int(got[0])


_FIELDS = frozenset(
    {"status", "before_ms_per_call", "after_ms_per_call", "statements", "evaluated_at",
     "rollback_action_id", "note"}
)  # fmt: skip


def finish_trial(conn: psycopg.Connection, trial_id: int, **values: Any) -> None:
    bad = set(values) - _FIELDS
    assert not bad, bad
    sets = ", ".join(f"{k} = %s" for k in values)
    with conn.transaction():
        conn.execute(
            f"UPDATE opscore.tuning_trials SET {sets} WHERE trial_id = %s",
            (*values.values(), trial_id),
        )


def trials(
    conn: psycopg.Connection, target_id: int, status: str | None = None, limit: int = 100
) -> list[TuningTrial]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT * FROM opscore.tuning_trials WHERE target_id = %s "
            "AND (%s::text IS NULL OR status = %s) ORDER BY trial_id DESC LIMIT %s",
            (target_id, status, status, limit),
        )
        return [TuningTrial(**r) for r in cur.fetchall()]
