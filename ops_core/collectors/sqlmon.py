"""SQL Monitor's live reads of a target (read-only monitoring SQL, files under sql/): the
executions running now with their elapsed time from ``clock_timestamp()``, their current wait
and wait class, the blocking chain up to its root, and progress where PostgreSQL reports it
(``pg_stat_progress_*``)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..analysis.waits import wait_class
from .live import live_sql


def _rows(conn: psycopg.Connection, source: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(live_sql(source, conn.info.server_version), params)  # type: ignore[arg-type]
        return list(cur.fetchall())


def progress(conn: psycopg.Connection) -> dict[int, dict[str, Any]]:
    """pid -> {command, phase, done, total, unit, pct} of commands reporting progress."""
    return {r.pop("pid"): r for r in _rows(conn, "sqlmon_progress", {})}


def lock_waiters(conn: psycopg.Connection) -> dict[int, list[int]]:
    """pid -> the pids blocking it, for every session waiting on a lock."""
    return {r["pid"]: list(r["blocking_pids"] or []) for r in _rows(conn, "sqlmon_waiters", {})}


def chain(pid: int, waiters: dict[int, list[int]]) -> list[int]:
    """The blocking chain of ``pid``: its first blocker, that one's first blocker, ... up to
    the root (a session not waiting on a lock); a cycle (a deadlock about to be detected)
    stops where it closes."""
    out: list[int] = []
    seen = {pid}
    cur = pid
    while waiters.get(cur):
        nxt = waiters[cur][0]
        if nxt in seen:
            break
        out.append(nxt)
        seen.add(nxt)
        cur = nxt
    return out


def executions(
    conn: psycopg.Connection,
    *,
    min_elapsed_s: float,
    include_opscore: bool,
    text_max: int,
    pid: int | None = None,
) -> list[dict[str, Any]]:
    """Executions running now for at least ``min_elapsed_s`` (or the one of ``pid``), each with
    wait_class, blocking_chain / root_blocker and progress (None when not reported)."""
    rows = _rows(
        conn,
        "sqlmon_live",
        {
            "min_elapsed": float(min_elapsed_s),
            "include_opscore": include_opscore,
            "text_max": text_max,
            "pid": pid,
        },
    )
    if not rows:
        return rows
    prog = progress(conn)
    waiters = lock_waiters(conn) if any(r["blocking_pids"] for r in rows) else {}
    for r in rows:
        r["wait_class"] = wait_class(r["state"], r["wait_event_type"])
        r["blocking_chain"] = chain(r["pid"], waiters)
        r["root_blocker"] = r["blocking_chain"][-1] if r["blocking_chain"] else None
        r["progress"] = prog.get(r["pid"])
    return rows
