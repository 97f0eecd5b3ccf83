"""ADDM analyses in the repository: one transaction per analysis (analysis, findings,
recommendations); reads; delete."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import NotFound
from ..model.addm import AddmResult, Finding, Recommendation
from ..model.serialize import to_jsonable
from . import snapshot_columnar as columnar
from . import snapshot_reads as reads


def last_two_snapshots(conn: psycopg.Connection, target_id: int) -> list[tuple[int]]:
    """The two newest usable snapshots of a target, newest first."""
    return conn.execute(
        "SELECT snapshot_id FROM opscore.snapshots WHERE target_id = %s AND status <> 'failed' "
        "ORDER BY captured_at DESC, snapshot_id DESC LIMIT 2",
        (target_id,),
    ).fetchall()


def statement_history(
    conn: psycopg.Connection, target_id: int, begin_id: int, lookback_s: float
) -> tuple[Any, dict[str, Any]]:
    """Per-statement sums (pg_stat_statements deltas already stored) over the target's
    snapshots in the ``lookback_s`` seconds up to snapshot ``begin_id``: the history ADDM
    judges each statement of a range against. Returns (frame of ``statements_frame`` columns,
    {snapshots, intervals, elapsed_s, from, to}); an empty frame and ``intervals`` 0 when
    the target has no earlier interval."""
    rows = conn.execute(
        "SELECT s.snapshot_id, s.captured_at, p.captured_at AS prev_at "
        "FROM opscore.snapshots s "
        "JOIN opscore.snapshots b ON b.snapshot_id = %(b)s "
        "LEFT JOIN opscore.snapshots p ON p.snapshot_id = s.prev_snapshot_id "
        "WHERE s.target_id = %(t)s AND s.status <> 'failed' AND s.snapshot_id <= %(b)s "
        "AND s.captured_at <= b.captured_at "
        "AND s.captured_at > b.captured_at - make_interval(secs => %(lb)s) "
        "ORDER BY s.snapshot_id",
        {"b": begin_id, "t": target_id, "lb": float(lookback_s)},
    ).fetchall()
    with_deltas = [r for r in rows if r[2] is not None]
    meta: dict[str, Any] = {
        "snapshots": len(rows),
        "intervals": len(with_deltas),
        "elapsed_s": round(sum((r[1] - r[2]).total_seconds() for r in with_deltas), 3),
        "from": with_deltas[0][2].isoformat() if with_deltas else None,
        "to": with_deltas[-1][1].isoformat() if with_deltas else None,
    }
    ids = [r[0] for r in with_deltas]
    frame = reads.statements_frame(conn, columnar.plan(conn, target_id, ids), False)
    return frame, meta


def store(
    conn: psycopg.Connection,
    target_id: int,
    begin: Any,
    end: Any,
    database: str | None,
    result: AddmResult,
    min_impact_pct: float,
) -> int:
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO opscore.addm_analyses (target_id, begin_snapshot_id, end_snapshot_id, "
            "begin_at, end_at, database, db_time_s, db_time_source, ash_db_time_s, pgss_time_s, "
            "ash_samples, min_impact_pct, breakdown, notes) VALUES "
            "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING analysis_id",
            (
                target_id,
                begin.snapshot_id,
                end.snapshot_id,
                begin.captured_at,
                end.captured_at,
                database,
                result.db_time_s,
                result.db_time_source,
                result.ash_db_time_s,
                result.pgss_time_s,
                result.ash_samples,
                min_impact_pct,
                Jsonb(to_jsonable(result.breakdown)),
                Jsonb(result.notes),
            ),
        ).fetchone()
        assert row is not None
        aid = int(row[0])
        for f in result.findings:
            conn.execute(
                "INSERT INTO opscore.addm_findings (analysis_id, rank, type, title, "
                "impact_db_time_s, impact_pct, risk_pct, basis, evidence, objects, statements, "
                "sessions) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (
                    aid,
                    f.rank,
                    f.type,
                    f.title,
                    round(f.impact_db_time_s, 3),
                    f.impact_pct,
                    f.risk_pct,
                    f.basis,
                    Jsonb(to_jsonable(f.evidence)),
                    list(f.objects),
                    Jsonb(to_jsonable(f.statements)),
                    [int(s) for s in f.sessions],
                ),
            )
            for i, r in enumerate(f.recommendations, 1):
                conn.execute(
                    "INSERT INTO opscore.addm_recommendations (analysis_id, rank, seq, "
                    "action_type, action, rationale, benefit_db_time_s, benefit_pct) "
                    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                    (
                        aid,
                        f.rank,
                        i,
                        r.action_type,
                        r.action,
                        r.rationale,
                        None if r.benefit_db_time_s is None else round(r.benefit_db_time_s, 3),
                        r.benefit_pct,
                    ),
                )
    return aid


_COLS = (
    "a.analysis_id, t.name AS target, a.begin_snapshot_id, a.end_snapshot_id, a.begin_at, "
    "a.end_at, a.created_at, a.database, a.db_time_s, a.db_time_source, a.ash_db_time_s, "
    "a.pgss_time_s, a.ash_samples, a.min_impact_pct, a.breakdown, a.notes, "
    "(SELECT f.type FROM opscore.addm_findings f WHERE f.analysis_id = a.analysis_id "
    " ORDER BY f.rank LIMIT 1) AS top_finding"
)


def get(conn: psycopg.Connection, analysis_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_COLS} FROM opscore.addm_analyses a JOIN opscore.targets t "
            "USING (target_id) WHERE a.analysis_id = %s",
            (analysis_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(
            f"There is no ADDM analysis {analysis_id}.",
            "List analyses with `opscore addm list` (add --target NAME).",
        )
    return row


def list_analyses(conn: psycopg.Connection, target_id: int | None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_COLS} FROM opscore.addm_analyses a JOIN opscore.targets t "
            "USING (target_id) WHERE %(t)s::int IS NULL OR a.target_id = %(t)s "
            "ORDER BY a.created_at DESC, a.analysis_id DESC",
            {"t": target_id},
        )
        return cur.fetchall()


def find(
    conn: psycopg.Connection,
    target_id: int,
    begin_id: int,
    end_id: int,
    min_impact_pct: float,
    database: str | None = None,
) -> dict[str, Any] | None:
    """The newest stored analysis of exactly that range, database and threshold, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_COLS} FROM opscore.addm_analyses a JOIN opscore.targets t "
            "USING (target_id) WHERE a.target_id = %s AND a.begin_snapshot_id = %s "
            "AND a.end_snapshot_id = %s AND a.database IS NOT DISTINCT FROM %s "
            "AND a.min_impact_pct = %s ORDER BY a.created_at DESC, a.analysis_id DESC LIMIT 1",
            (target_id, begin_id, end_id, database, min_impact_pct),
        )
        return cur.fetchone()


def findings(conn: psycopg.Connection, analysis_id: int) -> list[Finding]:
    get(conn, analysis_id)
    recs: dict[int, list[Recommendation]] = {}
    for rank, *r in conn.execute(
        "SELECT rank, action_type, action, rationale, benefit_db_time_s, benefit_pct "
        "FROM opscore.addm_recommendations WHERE analysis_id = %s ORDER BY rank, seq",
        (analysis_id,),
    ):
        recs.setdefault(rank, []).append(Recommendation(*r))
    out = []
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT rank, type, title, impact_db_time_s, impact_pct, risk_pct, basis, evidence, "
            "objects, statements, sessions FROM opscore.addm_findings WHERE analysis_id = %s "
            "ORDER BY rank",
            (analysis_id,),
        )
        for row in cur.fetchall():
            rank = row.pop("rank")
            out.append(Finding(**row, recommendations=recs.get(rank, []), rank=rank))
    return out


def delete(conn: psycopg.Connection, analysis_id: int) -> dict[str, Any]:
    row = get(conn, analysis_id)
    with conn.transaction():
        conn.execute("DELETE FROM opscore.addm_analyses WHERE analysis_id = %s", (analysis_id,))
    return row
