"""SQL Monitor: executions that run at least ``sqlmon_min_elapsed_s`` (default 5 s), live
and kept in the repository after they finish (``sqlmon_retention_days``).

Live executions come from ``pg_stat_activity`` of the target (elapsed from
``clock_timestamp()``, never negative; the current wait and its class; the blocking chain up
to its root; progress from ``pg_stat_progress_*``); the ASH samples already in the repository
add every sampled execution over the threshold, with its DB time and waits by class, so an
execution nobody watched is there too. Details: the ASH wait timeline of that pid and
query_start, and the plan (EXPLAIN without ANALYZE through the safe plan path).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from .. import repository
from ..collectors import live, sqlmon, sqlmon_plans
from ..collectors.scrub import scrub
from ..config import get_settings
from ..errors import InvalidInput, NotFound, OpsCoreError
from ..repository import sqlmon as store
from ..repository import targets as repo_targets
from ..targets import connection
from .common import opscore_shown, utc_time
from .logs import read_log_entries
from .targets import get_target, target_dsn

__all__ = [
    "SqlExecution",
    "ExecutionDetail",
    "ExecutionPlan",
    "MonitorStatistics",
    "sql_monitor",
    "capture_sql_monitor",
    "list_sql_executions",
    "sql_execution",
    "sql_execution_plan",
    "sql_execution_statistics",
    "sql_monitor_statistics",
    "slow_queries",
    "purge_sql_monitor",
]


@dataclass
class SqlExecution:
    exec_id: int | None
    target: str
    pid: int
    query_start: datetime
    elapsed_s: float
    status: str  # running / done
    query_id: int | None = None
    query: str | None = None
    usename: str | None = None
    datname: str | None = None
    application_name: str | None = None
    client_addr: str | None = None
    backend_start: datetime | None = None
    state: str | None = None
    wait_event_type: str | None = None
    wait_event: str | None = None
    wait_class: str | None = None
    blocking_pids: list[int] = field(default_factory=list)
    blocking_chain: list[int] = field(default_factory=list)  # first blocker ... root
    root_blocker: int | None = None
    progress: dict[str, Any] | None = None  # command, phase, done, total, unit, pct
    samples: int = 0
    db_time_s: float = 0.0
    waits: dict[str, float] = field(default_factory=dict)  # wait class -> sampled seconds
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    source: str = "live"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExecutionPlan:
    exec_id: int
    query: str | None
    datname: str | None
    plan: str | None
    method: str | None  # plain / generic_plan / prepare_generic
    reason: str | None  # why there is no plan
    actual_plan: str | None = None  # from auto_explain in the server log (finished only)
    actual_plan_reason: str | None = None  # why there is no actual plan
    actual_plan_duration_ms: float | None = None  # the duration auto_explain logged
    actual_plan_analyzed: bool | None = None  # actual rows per node (log_analyze on)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExecutionDetail:
    execution: SqlExecution
    timeline: list[dict[str, Any]]  # ASH samples: sample_time, state, wait_class, event
    waits_by_event: list[dict[str, Any]]
    plan: ExecutionPlan | None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MonitorStatistics:
    target: str
    begin: datetime
    end: datetime
    totals: dict[str, Any]
    by_duration: list[dict[str, Any]]
    by_wait_class: list[dict[str, Any]]
    top: list[SqlExecution]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _min_elapsed(value: float | None) -> float:
    v = get_settings().sqlmon_min_elapsed_s if value is None else float(value)
    if v < 0:
        raise InvalidInput(f"min_elapsed_s {v} is negative.", "Give 0 or more seconds.")
    return v


def _from_row(target: str, r: dict[str, Any]) -> SqlExecution:
    keep = {f for f in SqlExecution.__dataclass_fields__}
    e = SqlExecution(
        **{k: v for k, v in r.items() if k in keep and k not in ("target", "exec_id")},
        exec_id=r.get("exec_id"),
        target=target,
    )
    if e.backend_start is not None and e.backend_start.year <= 1:
        e.backend_start = None
    e.blocking_pids = list(e.blocking_pids or [])
    e.waits = {k: float(v) for k, v in (e.waits or {}).items()}
    e.query = scrub(e.query) if e.query else e.query
    return e


def sql_monitor(
    target: str,
    *,
    min_elapsed_s: float | None = None,
    include_opscore: bool | None = None,
    record: bool = True,
) -> list[SqlExecution]:
    """Executions running now on the target for at least ``min_elapsed_s`` (default the
    setting ``sqlmon_min_elapsed_s``, 5 s), longest first: SQL text, user, application, client,
    elapsed (from clock_timestamp(), never negative), state, current wait and its class, the
    blocking chain to its root, and progress where PostgreSQL reports it. With ``record`` they
    are kept in the repository (executions seen running before and gone now are marked done),
    merged with what ASH sampled since the last capture."""
    t = get_target(target)
    threshold = _min_elapsed(min_elapsed_s)
    with connection.monitoring_session(target_dsn(t)) as conn:
        rows = sqlmon.executions(
            conn,
            min_elapsed_s=0.0,
            include_opscore=opscore_shown(include_opscore),
            text_max=get_settings().ash_query_text_max,
        )
    for r in rows:
        r["query"] = scrub(r["query"]) if r["query"] else r["query"]
    ids: dict[tuple[int, datetime], int] = {}
    if record:
        with repository.session() as repo:
            kept = store.record_live(repo, t.target_id, rows, min_elapsed_s=threshold)
            over = [r for r in rows if r["elapsed_s"] >= threshold]
            ids = {(r["pid"], r["query_start"]): i for r, i in zip(over, kept, strict=True)}
        capture_sql_monitor(target, running={(r["pid"], r["query_start"]) for r in rows})
    out = []
    for r in rows:
        if r["elapsed_s"] < threshold:
            continue
        e = _from_row(t.name, {**r, "status": "running", "source": "live"})
        e.exec_id = ids.get((r["pid"], r["query_start"]))
        e.first_seen = e.last_seen = r["seen_at"]
        out.append(e)
    return sorted(out, key=lambda e: -e.elapsed_s)


def capture_sql_monitor(
    target: str,
    begin: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    min_elapsed_s: float | None = None,
    running: set[tuple[int, datetime]] | None = None,
) -> int:
    """Keep in the repository every execution the ASH samples of [begin, end) show running at
    least ``min_elapsed_s`` (default: since the last capture, at most the last day, to now).
    Executions no longer running on the target are marked done (``running``: the (pid,
    query_start) of the sessions active now; read from the target when not given, and left
    as they are when the target cannot be reached). Returns the number of executions written
    or updated."""
    t = get_target(target)
    if running is None:
        try:
            with connection.monitoring_session(target_dsn(t)) as conn:
                now_rows = sqlmon.executions(
                    conn, min_elapsed_s=0.0, include_opscore=True, text_max=64
                )
            running = {(r["pid"], r["query_start"]) for r in now_rows}
        except OpsCoreError:
            running = None
    now = datetime.now(UTC)
    e = utc_time(end, "end") if end is not None else now + timedelta(seconds=1)
    with repository.session() as repo:
        if begin is not None:
            b = utc_time(begin, "begin")
        else:
            last = store.last_capture(repo, t.target_id)
            b = max(last - timedelta(minutes=10), now - timedelta(days=1)) if last else None
            b = b or now - timedelta(days=1)
        if b >= e:
            raise InvalidInput("The capture range is empty: begin is not before end.")
        n = store.record_from_ash(
            repo,
            t.target_id,
            b,
            e,
            min_elapsed_s=_min_elapsed(min_elapsed_s),
            running=running,
        )
        if running is not None:
            store.mark_finished(repo, t.target_id, sorted(running))
        return n


def list_sql_executions(
    target: str,
    *,
    begin: datetime | str | None = None,
    end: datetime | str | None = None,
    status: str | None = None,
    min_elapsed_s: float = 0.0,
    query_id: int | None = None,
    limit: int = 200,
) -> list[SqlExecution]:
    """Executions kept in the repository that overlap [begin, end), longest first."""
    if status not in (None, "running", "done"):
        raise InvalidInput(f"Unknown status {status!r}.", "Use running or done.")
    t = get_target(target)
    b = utc_time(begin, "begin") if begin is not None else None
    e = utc_time(end, "end") if end is not None else None
    with repository.session() as repo:
        rows = store.list_executions(
            repo,
            t.target_id,
            begin=b,
            end=e,
            status=status,
            min_elapsed_s=_min_elapsed(min_elapsed_s),
            query_id=query_id,
            limit=limit,
        )
    return [_from_row(t.name, r) for r in rows]


def _stored(exec_id: int) -> tuple[Any, dict[str, Any]]:
    with repository.session() as repo:
        row = store.get(repo, exec_id)
        if row is None:
            raise NotFound(
                f"No SQL Monitor execution {exec_id}.",
                "List them with `opscore sql monitor --history`.",
            )
        t = repo_targets.get_by_id(repo, row["target_id"])
    return t, row


def sql_execution_plan(exec_id: int) -> ExecutionPlan:
    """The plan of a monitored execution's statement: EXPLAIN without ANALYZE (nothing is
    executed) in a read-only session on its database, through the safe plan path (generic plan
    for texts with placeholders: GENERIC_PLAN on 16+, PREPARE on 14-15), or why there is none.
    For a finished execution also its actual plan, logged by auto_explain in the server log,
    or why there is none (auto_explain off, shorter than its threshold, log not readable)."""
    t, row = _stored(exec_id)
    res = ExecutionPlan(exec_id, row["query"], row["datname"], None, None, None)
    if not row["query"]:
        _actual_plan(t, row, res)
        res.reason = "The execution's text was not captured."
        return res
    dsn = target_dsn(t)
    if row["datname"]:
        dsn = make_conninfo(dsn, dbname=row["datname"])
    try:
        with connection.monitoring_session(dsn) as conn:
            p = live.plan(conn, row["query"], fmt="text")
    except Exception as exc:  # noqa: BLE001 - the database may be gone: an answer, not a crash
        res.reason = f"Could not connect to plan it: {str(exc).splitlines()[0]}"
        res.actual_plan_reason = "The target could not be reached to read its log."
        return res
    _actual_plan(t, row, res)
    res.plan, res.method, res.reason = p.plan, p.method, p.reason
    if res.reason and len(row["query"]) >= get_settings().ash_query_text_max:
        res.reason += (
            f" (the text kept is cut at {get_settings().ash_query_text_max} characters: "
            "OPSCORE_ASH_QUERY_TEXT_MAX)"
        )
    return res


#: the log tail read for actual plans (auto_explain entries of the last executions)
ACTUAL_PLAN_LOG_BYTES = 16 * 1024 * 1024


def _actual_plan(t: Any, row: dict[str, Any], res: ExecutionPlan) -> None:
    """``res.actual_plan`` from auto_explain in the target's log, or the reason there is none."""
    if row["status"] != "done":
        res.actual_plan_reason = (
            "Still running: auto_explain logs the actual plan when the execution finishes."
        )
        return
    try:
        with connection.monitoring_session(target_dsn(t)) as conn:
            ae = sqlmon_plans.settings(conn)
        off = ae.reason_off()
        if off:
            res.actual_plan_reason = off
            return
        src, entries, _ = read_log_entries(t, ACTUAL_PLAN_LOG_BYTES)
    except (OpsCoreError, psycopg.Error) as exc:
        msg = getattr(exc, "message", None) or str(exc).strip()
        res.actual_plan_reason = f"The target's log could not be read: {msg}"
        return
    if src.path is None:
        res.actual_plan_reason = (
            f"auto_explain is on, but the server log is not readable here: {src.reason}"
        )
        return
    found = sqlmon_plans.match(sqlmon_plans.parse_entries(entries), row["pid"], row["query_start"])
    if found is not None:
        res.actual_plan = found.plan
        res.actual_plan_duration_ms = found.duration_ms
        res.actual_plan_analyzed = found.analyzed
        return
    threshold = ae.min_duration_ms or 0
    if row["elapsed_s"] * 1000 < threshold:
        res.actual_plan_reason = (
            f"The execution ({row['elapsed_s']:.1f} s) was shorter than "
            f"auto_explain.log_min_duration ({threshold} ms): not logged."
        )
    else:
        res.actual_plan_reason = (
            f"No auto_explain entry of pid {row['pid']} at {row['query_start']:%Y-%m-%d %H:%M:%S} "
            f"in the last {ACTUAL_PLAN_LOG_BYTES // 2**20} MB of {src.path} (rotated away, "
            "or the execution ended in an error)."
        )


def sql_execution(exec_id: int, *, with_plan: bool = True) -> ExecutionDetail:
    """One execution: its figures, its ASH wait timeline (the samples of that pid and
    query_start), its time by wait event, and its plan."""
    t, row = _stored(exec_id)
    with repository.session() as repo:
        tl = store.timeline(repo, row)
    by_event: dict[tuple[str, str], float] = {}
    for s in tl:
        key = (s["wait_class"], s["event"])
        by_event[key] = by_event.get(key, 0.0) + float(s["weight_s"] or 0)
    events = [
        {"wait_class": k[0], "event": k[1], "seconds": round(v, 3)}
        for k, v in sorted(by_event.items(), key=lambda kv: -kv[1])
    ]
    note = None if tl else "No ASH samples of this execution (the sampler was not running)."
    return ExecutionDetail(
        _from_row(t.name, row), tl, events, sql_execution_plan(exec_id) if with_plan else None, note
    )


def sql_execution_statistics(exec_id: int) -> dict[str, Any]:
    """An execution's statistics: elapsed, DB time, samples, waits by class (seconds and %)."""
    t, row = _stored(exec_id)
    e = _from_row(t.name, row)
    total = sum(e.waits.values())
    return {
        "exec_id": exec_id,
        "elapsed_s": e.elapsed_s,
        "db_time_s": e.db_time_s,
        "samples": e.samples,
        "status": e.status,
        "waits": [
            {"wait_class": k, "seconds": v, "pct": round(100 * v / total, 1) if total else None}
            for k, v in sorted(e.waits.items(), key=lambda kv: -kv[1])
        ],
    }


def sql_monitor_statistics(
    target: str,
    begin: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    top: int = 10,
) -> MonitorStatistics:
    """Overall statistics of the kept executions in [begin, end) (default the last day):
    counts by duration bucket, time by wait class, the top by elapsed."""
    t = get_target(target)
    e = utc_time(end, "end") if end is not None else datetime.now(UTC) + timedelta(seconds=1)
    b = utc_time(begin, "begin") if begin is not None else e - timedelta(days=1)
    if b >= e:
        raise InvalidInput("The range is empty: begin is not before end.")
    with repository.session() as repo:
        st = store.statistics(repo, t.target_id, b, e, top=top)
    return MonitorStatistics(
        t.name,
        b,
        e,
        st["totals"],
        st["by_duration"],
        st["by_wait_class"],
        [_from_row(t.name, r) for r in st["top"]],
    )


def slow_queries(target: str, limit: int = 20, *, hours: float = 24.0) -> list[SqlExecution]:
    """The slowest executions kept by the SQL Monitor in the last ``hours``, longest first."""
    if limit < 1:
        raise InvalidInput(f"limit {limit} must be at least 1.")
    begin = datetime.now(UTC) - timedelta(hours=hours)
    return list_sql_executions(target, begin=begin, limit=limit)


def purge_sql_monitor(target: str | None = None, *, keep_days: int | None = None) -> int:
    """Delete finished executions older than ``keep_days`` (default ``sqlmon_retention_days``);
    the number deleted."""
    days = get_settings().sqlmon_retention_days if keep_days is None else int(keep_days)
    if days < 0:
        raise InvalidInput(f"keep_days {days} is negative.")
    tid = get_target(target).target_id if target else None
    with repository.session() as repo:
        return store.purge(repo, tid, datetime.now(UTC) - timedelta(days=days))
