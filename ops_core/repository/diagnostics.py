"""Repository side of diagnostics (migration 0016): incidents and diagnostic dump records.

Incidents are opened from what the repository already knows, idempotently (one incident per
source object): critical alerts, ADDM findings at or above an impact, and healing actions
(sessions terminated or queries cancelled by opscore)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import NotFound

__all__ = [
    "sync_incidents",
    "insert_incident",
    "list_incidents",
    "get_incident",
    "resolve_incident",
    "insert_dump",
    "finish_dump",
    "get_dump",
    "list_dumps",
    "delete_dump",
]

_INC = (
    "i.incident_id, t.name AS target, i.source, i.source_ref, i.severity, i.title, i.detail, "
    "i.status, i.opened_at, i.resolved_at, i.resolution"
)

_SYNC = [
    # critical alerts (firing or acknowledged)
    """INSERT INTO opscore.incidents (target_id, source, source_ref, severity, title, detail,
                                      opened_at)
       SELECT a.target_id, 'alert', a.alert_id::text, 'critical', a.summary,
              jsonb_build_object('alert_id', a.alert_id, 'value', a.value), a.fired_at
         FROM opscore.alerts a
        WHERE a.severity = 'critical' AND a.status <> 'resolved'
          AND (%(t)s::int IS NULL OR a.target_id = %(t)s)
       ON CONFLICT DO NOTHING""",
    # ADDM findings at or above the impact threshold (% of DB time)
    """INSERT INTO opscore.incidents (target_id, source, source_ref, severity, title, detail,
                                      opened_at)
       SELECT a.target_id, 'addm', a.analysis_id || ':' || f.rank,
              CASE WHEN f.impact_pct >= 2 * %(impact)s THEN 'critical' ELSE 'warning' END,
              f.title,
              jsonb_build_object('analysis_id', a.analysis_id, 'rank', f.rank,
                                 'impact_pct', f.impact_pct, 'begin_at', a.begin_at,
                                 'end_at', a.end_at),
              a.created_at
         FROM opscore.addm_findings f JOIN opscore.addm_analyses a USING (analysis_id)
        WHERE f.impact_pct >= %(impact)s AND (%(t)s::int IS NULL OR a.target_id = %(t)s)
       ON CONFLICT DO NOTHING""",
    # healing: sessions terminated / queries cancelled by opscore
    """INSERT INTO opscore.incidents (target_id, source, source_ref, severity, title, detail,
                                      opened_at)
       SELECT j.target_id, 'healing', j.action_id::text, 'warning', j.what || ': ' || j.why,
              jsonb_build_object('action_id', j.action_id, 'feature', j.feature,
                                 'evidence', j.evidence),
              j.started_at
         FROM opscore.action_journal j
        WHERE j.feature IN ('terminate_session', 'cancel_query') AND j.outcome = 'done'
          AND (%(t)s::int IS NULL OR j.target_id = %(t)s)
       ON CONFLICT DO NOTHING""",
]


def sync_incidents(conn: psycopg.Connection, target_id: int | None, impact_pct: float) -> int:
    """Open the incidents their sources call for (idempotent); how many were opened."""
    n = 0
    with conn.transaction():
        for q in _SYNC:
            n += conn.execute(q, {"t": target_id, "impact": impact_pct}).rowcount
    return n


def insert_incident(
    conn: psycopg.Connection,
    target_id: int | None,
    source: str,
    severity: str,
    title: str,
    detail: dict[str, Any],
    source_ref: str | None = None,
) -> int:
    row = conn.execute(
        "INSERT INTO opscore.incidents (target_id, source, source_ref, severity, title, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING incident_id",
        (target_id, source, source_ref, severity, title, Jsonb(detail)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def list_incidents(
    conn: psycopg.Connection,
    target_id: int | None,
    status: str | None,
    severity: str | None,
    since: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""SELECT {_INC} FROM opscore.incidents i LEFT JOIN opscore.targets t USING (target_id)
                WHERE (%(t)s::int IS NULL OR i.target_id = %(t)s)
                  AND (%(st)s::text IS NULL OR i.status = %(st)s)
                  AND (%(sev)s::text IS NULL OR i.severity = %(sev)s)
                  AND (%(since)s::timestamptz IS NULL OR i.opened_at >= %(since)s)
                ORDER BY i.opened_at DESC, i.incident_id DESC LIMIT %(limit)s""",
            {"t": target_id, "st": status, "sev": severity, "since": since, "limit": limit},
        )
        return list(cur.fetchall())


def get_incident(conn: psycopg.Connection, incident_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_INC} FROM opscore.incidents i LEFT JOIN opscore.targets t "
            "USING (target_id) WHERE i.incident_id = %s",
            (incident_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"No incident {incident_id}.", "List them with `opscore incident list`.")
    return row


def resolve_incident(conn: psycopg.Connection, incident_id: int, resolution: str) -> None:
    get_incident(conn, incident_id)
    conn.execute(
        "UPDATE opscore.incidents SET status = 'resolved', resolved_at = coalesce(resolved_at, "
        "now()), resolution = %s WHERE incident_id = %s",
        (resolution, incident_id),
    )


_DUMP = (
    "d.dump_id, t.name AS target, d.incident_id, d.created_at, d.status, d.path, d.size_bytes, "
    "d.begin_at, d.end_at, d.sections, d.error"
)


def insert_dump(
    conn: psycopg.Connection,
    target_id: int,
    incident_id: int | None,
    begin_at: datetime,
    end_at: datetime,
) -> int:
    row = conn.execute(
        "INSERT INTO opscore.diag_dumps (target_id, incident_id, status, begin_at, end_at) "
        "VALUES (%s, %s, 'creating', %s, %s) RETURNING dump_id",
        (target_id, incident_id, begin_at, end_at),
    ).fetchone()
    assert row is not None
    return int(row[0])


def finish_dump(
    conn: psycopg.Connection,
    dump_id: int,
    status: str,
    path: str | None,
    size: int | None,
    sections: dict[str, str],
    error: str | None = None,
) -> None:
    conn.execute(
        "UPDATE opscore.diag_dumps SET status = %s, path = %s, size_bytes = %s, sections = %s, "
        "error = %s WHERE dump_id = %s",
        (status, path, size, Jsonb(sections), error, dump_id),
    )


def get_dump(conn: psycopg.Connection, dump_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_DUMP} FROM opscore.diag_dumps d LEFT JOIN opscore.targets t "
            "USING (target_id) WHERE d.dump_id = %s",
            (dump_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"No diagnostic dump {dump_id}.", "List them with `opscore dump list`.")
    return row


def list_dumps(conn: psycopg.Connection, target_id: int | None, limit: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_DUMP} FROM opscore.diag_dumps d LEFT JOIN opscore.targets t "
            "USING (target_id) WHERE %(t)s::int IS NULL OR d.target_id = %(t)s "
            "ORDER BY d.dump_id DESC LIMIT %(limit)s",
            {"t": target_id, "limit": limit},
        )
        return list(cur.fetchall())


def delete_dump(conn: psycopg.Connection, dump_id: int) -> None:
    conn.execute("DELETE FROM opscore.diag_dumps WHERE dump_id = %s", (dump_id,))
