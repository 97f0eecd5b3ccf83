"""Query profiling data: one profile per statement over a snapshot range, from the repository.

A profile joins what opscore already keeps: the statement's pg_stat_statements deltas (calls,
execution and planning time, rows, blocks, temp, WAL), its ASH DB time with the waits by class
and event sampled while it ran (ASH samples carry the query id), and its plan — EXPLAIN
without ANALYZE through the safe plan path (generic plan for texts with placeholders:
GENERIC_PLAN on 16+, PREPARE on 14-15) — or the reason there is no plan. Every profile has a
plan or a stated reason; nothing is left blank.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from psycopg.conninfo import make_conninfo

from .. import repository
from ..collectors import live
from ..errors import InvalidInput
from ..repository import ash_read
from ..repository import snapshot_ranges as ranges
from ..targets import connection
from .performance import TOP_SQL_ORDER, top_statements
from .snapshots import list_snapshots
from .targets import get_target, target_dsn

__all__ = ["QueryWait", "QueryProfile", "QueryProfiles", "query_profiles"]


@dataclass
class QueryWait:
    wait_class: str
    event: str | None
    seconds: float
    pct: float | None  # of the statement's sampled time


@dataclass
class QueryProfile:
    queryid: int
    datname: str | None
    username: str | None
    query: str | None
    calls: int
    total_ms: float
    mean_ms: float | None
    plan_ms: float
    rows: int
    rows_per_call: float | None
    shared_blks_read: int
    shared_blks_hit: int
    hit_pct: float | None
    read_ms: float
    temp_blks_written: int
    wal_bytes: float
    pct_sql_time: float | None  # share of pg_stat_statements execution time in the range
    pct_db_time: float | None  # share of ASH DB time (None without samples)
    db_time_s: float  # ASH DB time of the statement (on CPU or in non-idle waits)
    samples: int  # ASH samples of the statement
    waits: list[QueryWait] = field(default_factory=list)
    plan: str | None = None
    #: plain / generic_plan / prepare_generic; rows_only_*: a write's row-finding SELECT
    plan_method: str | None = None
    plan_reason: str | None = None  # why there is no plan (never empty without a plan)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QueryProfiles:
    target: str
    begin_id: int
    end_id: int
    begin_at: str | None
    end_at: str | None
    order_by: str
    statements: int  # statements with calls in the range (before the limit)
    profiles: list[QueryProfile]
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _range(target: str, begin_id: int | None, end_id: int | None) -> tuple[int, int]:
    if begin_id is not None and end_id is not None:
        return int(begin_id), int(end_id)
    if begin_id is not None or end_id is not None:
        raise InvalidInput("Give both begin_id and end_id, or neither (the last two snapshots).")
    snaps = list_snapshots(target, limit=2)
    if len(snaps) < 2:
        raise InvalidInput(
            f"{target} has fewer than two snapshots: no range to profile.",
            f"Take snapshots around the workload (`opscore snapshot take {target}`).",
        )
    return min(s.snapshot_id for s in snaps), max(s.snapshot_id for s in snaps)


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _waits(frame: pd.DataFrame, queryid: int) -> tuple[list[QueryWait], float, int]:
    if frame.empty:
        return [], 0.0, 0
    mine = frame[frame["query_id"] == queryid]
    total = float(mine["time_s"].sum())
    waits = [
        QueryWait(
            str(r["wait_class"]),
            None if pd.isna(r["event"]) else str(r["event"]),
            round(float(r["time_s"]), 3),
            round(100 * float(r["time_s"]) / total, 1) if total > 0 else None,
        )
        for _, r in mine.sort_values("time_s", ascending=False).iterrows()
    ]
    return waits, round(float(mine["db_time_s"].sum()), 3), int(mine["samples"].sum())


def _rows_plan(conn: Any, p: QueryProfile, refused: str) -> live.Plan:
    """A write the plan role may not plan (it reads only): the plan of the SELECT that finds
    its rows, said so in the plan's first line; or why there is none."""
    got = live.plan(conn, p.query or "", fmt="text", rows_only=True)
    why = refused.removeprefix("The server could not plan it: ")
    if got.plan is None:
        return live.Plan(None, f"{why} (the plan role only reads); {got.reason}")
    head = f"-- the SELECT that finds its rows ({why}: the plan role only reads)\n"
    return live.Plan(head + str(got.plan), None, f"rows_only_{got.method}", got.text)


def _plans(t: Any, profiles: list[QueryProfile]) -> None:
    """A plan or the reason there is none for every profile: one monitoring session per
    database of the statements."""
    by_db: dict[str | None, list[QueryProfile]] = {}
    for p in profiles:
        if not p.query:
            p.plan_reason = "pg_stat_statements kept no text for this statement."
            continue
        by_db.setdefault(p.datname, []).append(p)
    for db, group in by_db.items():
        dsn = make_conninfo(target_dsn(t), dbname=db) if db else target_dsn(t)
        try:
            with connection.monitoring_session(dsn) as conn:
                for p in group:
                    try:
                        got = live.plan(conn, p.query or "", fmt="text")
                    except Exception as exc:  # noqa: BLE001 - a refusal is an answer, not a crash
                        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                        p.plan_reason = f"Not planned: {first}"
                        continue
                    if got.plan is None and "permission denied" in (got.reason or ""):
                        got = _rows_plan(conn, p, got.reason or "")
                    p.plan, p.plan_method = got.plan, got.method
                    p.plan_reason = None if got.plan else (got.reason or "No plan returned.")
        except Exception as exc:  # noqa: BLE001 - the database may be gone since the range
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            for p in group:
                p.plan_reason = f"Could not connect to database {db!r} to plan it: {first}"


def query_profiles(
    target: str,
    begin_id: int | None = None,
    end_id: int | None = None,
    *,
    queryid: int | None = None,
    limit: int = 20,
    order_by: str = "total_ms",
    with_plan: bool = True,
) -> QueryProfiles:
    """Per-statement profiles of a snapshot range (default the last two snapshots), largest
    ``order_by`` first (total_ms, mean_ms, calls, rows, shared_blks_read, temp_blks_written,
    wal_bytes), or of one statement (``queryid``): its pg_stat_statements deltas, its ASH DB
    time and waits by class and event, and its plan or the reason there is none."""
    if not 1 <= limit <= 500:
        raise InvalidInput(f"limit {limit} is out of range.", "Give 1 to 500.")
    if order_by not in TOP_SQL_ORDER.values():
        raise InvalidInput(
            f"{order_by!r} is not a profile ordering.",
            "Use " + ", ".join(TOP_SQL_ORDER.values()) + ".",
        )
    t = get_target(target)
    b, e = _range(t.name, begin_id, end_id)
    top = top_statements(t.name, b, e, order_by=order_by, limit=100_000)
    statements, bounds = len(top), (top.attrs.get("begin_at"), top.attrs.get("end_at"))
    if queryid is not None:
        top = top[top["queryid"] == int(queryid)]
    top = top.head(limit)
    with repository.session() as repo:
        rr = ranges.range_read(repo, t.target_id, t.name, b, e)
        frame = ash_read.db_time(
            repo, t.target_id, rr.begin.captured_at, rr.end.captured_at,
            ["query_id", "wait_class", "event"],
        )  # fmt: skip
    profiles = []
    for _, r in top.iterrows():
        qid = int(r["queryid"])
        waits, dbt, samples = _waits(frame, qid)
        profiles.append(
            QueryProfile(
                queryid=qid,
                datname=r["datname"],
                username=r["username"],
                query=r["query"] or None,
                calls=int(r["calls"]),
                total_ms=round(float(r["total_ms"]), 3),
                mean_ms=_num(r["mean_ms"]),
                plan_ms=round(float(r["plan_ms"] or 0), 3),
                rows=int(r["rows"]),
                rows_per_call=_num(r["rows_per_call"]),
                shared_blks_read=int(r["shared_blks_read"]),
                shared_blks_hit=int(r["shared_blks_hit"]),
                hit_pct=_num(r["hit_pct"]),
                read_ms=float(r["read_ms"] or 0),
                temp_blks_written=int(r["temp_blks_written"]),
                wal_bytes=float(r["wal_bytes"] or 0),
                pct_sql_time=_num(r["pct_sql_time"]),
                pct_db_time=_num(r["pct_db_time"]),
                db_time_s=dbt,
                samples=samples,
                waits=waits,
            )
        )
    if with_plan:
        _plans(t, profiles)
    else:
        for p in profiles:
            p.plan_reason = "Not asked for (with_plan is false)."
    note = None
    if queryid is not None and not profiles:
        note = f"Statement {queryid} has no calls in snapshots {b}-{e}."
    elif frame.empty:
        note = "No ASH samples in the range: waits and DB time are empty (is the sampler on?)."
    return QueryProfiles(
        t.name,
        b,
        e,
        *bounds,
        order_by,
        statements,
        profiles,
        note,
    )
