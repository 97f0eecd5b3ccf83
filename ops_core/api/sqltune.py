"""SQL Tuning Advisor (tasks like Oracle's DBMS_SQLTUNE), SQL profiles as far as PostgreSQL
allows, the plan cache and the optimizer's misestimates.

A task holds statements (a SQL text, a queryid from the repository, or the top N by DB time of
a snapshot range); executing it analyses each one (``ops_core.analysis.sqltune.advisor``):
statistics, what-if indexes (hypopg on the target when created there, else built for real on
a clone opscore restored; never a CREATE INDEX on the target), SQL structure with rewrites
executed and compared row for row, and planner settings tried as SET LOCAL. Read-only
statements are executed inside READ ONLY transactions that are rolled back, with a statement
timeout; a statement that writes is never executed (explain only, said so). Accepting a
recommendation goes through the target's action policy (``targets/actions.py``).

PostgreSQL has no stored outlines or profiles: an opscore SQL profile is a verified set of
planner settings for one statement with its measured benefit, exported as SET LOCAL lines,
``ALTER ROLE/DATABASE ... SET`` (which apply to every statement of that role or database, not
just this one) or pg_hint_plan hints (only when the target has that extension). opscore does
not inject settings into a running application.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from psycopg.conninfo import make_conninfo

from .. import repository
from ..analysis import whatif
from ..analysis.sqltune import advisor, structure
from ..errors import InvalidInput, NotFound, NotSupported
from ..repository import perf_reads
from ..repository import snapshot_ranges as ranges
from ..repository import snapshot_reads as reads
from ..repository import sqltune as store
from ..repository import targets as repo_targets
from ..targets import actions, connection
from .backup_remote import list_clones
from .common import opscore_shown
from .performance import top_statements
from .snapshots import list_snapshots
from .targets import get_target, target_dsn

__all__ = [
    "TuningTask",
    "TuningRecommendation",
    "AcceptResult",
    "SqlProfile",
    "create_tuning_task",
    "list_tuning_tasks",
    "get_tuning_task",
    "execute_tuning_task",
    "tuning_recommendations",
    "delete_tuning_task",
    "accept_recommendation",
    "create_sql_profile",
    "list_sql_profiles",
    "set_sql_profile_enabled",
    "drop_sql_profile",
    "export_sql_profile",
    "plan_cache_statistics",
    "plan_cache_entries",
    "adaptive_statistics",
    "adaptive_suggestions",
]


@dataclass
class TuningTask:
    task_id: int
    target: str
    name: str | None
    status: str  # created / running / done / failed
    scope: dict[str, Any]
    database: str | None
    clone: str | None
    progress: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    statements: list[dict[str, Any]] = field(default_factory=list)
    recommendations: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TuningRecommendation:
    rec_id: int
    task_id: int
    seq: int
    type: str
    sql: str | None
    rationale: str
    method: str | None
    before_ms: float | None
    after_ms: float | None
    cost_before: float | None
    cost_after: float | None
    measured_speedup: float | None
    why_not: str | None
    evidence: dict[str, Any]
    action_id: int | None
    profile_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AcceptResult:
    rec_id: int
    type: str
    outcome: str  # done / reported / profile
    action_id: int | None = None
    profile_id: int | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SqlProfile:
    profile_id: int
    target: str
    name: str
    query_id: int | None
    database: str | None
    sql: str
    settings: dict[str, str]
    before_ms: float | None
    after_ms: float | None
    measured_speedup: float | None
    rec_id: int | None
    enabled: bool
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------- tasks
def _parse_or_refuse(text: str) -> None:
    try:
        structure.parse(text)
    except structure.ParseFailed as exc:
        raise InvalidInput(
            f"The SQL does not parse: {exc}", "Give one complete SQL statement."
        ) from None


def _clone_dsn(clone: str | None, database: str | None) -> str | None:
    if not clone:
        return None
    found = [c for c in list_clones() if c.clone == clone]
    if not found:
        raise NotFound(f"No clone {clone!r}.", "See `opscore clone list`.")
    if not found[0].running:
        raise InvalidInput(
            f"Clone {clone!r} is not running.", "Start one with `opscore backup restore --start`."
        )
    return make_conninfo(found[0].url, dbname=database or "postgres")


def create_tuning_task(
    target: str,
    sql: str | None = None,
    *,
    queryid: int | None = None,
    top: int | None = None,
    begin_id: int | None = None,
    end_id: int | None = None,
    database: str | None = None,
    clone: str | None = None,
    name: str | None = None,
) -> TuningTask:
    """A tuning task for one SQL text, one stored statement (``queryid``), or the ``top``
    statements by DB time of a snapshot range (default: the last two snapshots). Malformed SQL
    is refused with the parser's message; nothing is stored then."""
    t = get_target(target)
    given = [x for x in (sql, queryid, top) if x is not None]
    if len(given) != 1:
        raise InvalidInput("Give exactly one of: sql, queryid, top.")
    if clone:
        _clone_dsn(clone, database)
    stmts: list[dict[str, Any]] = []
    if sql is not None:
        _parse_or_refuse(sql)
        stmts = [{"sql": sql, "database": database}]
        scope: dict[str, Any] = {"kind": "sql"}
    elif queryid is not None:
        with repository.session() as repo:
            row = perf_reads.statement_text(repo, t.target_id, int(queryid))
        stmts = [{"sql": row["query"], "database": row["datname"], "query_id": int(queryid)}]
        scope = {"kind": "queryid", "queryid": int(queryid)}
    else:
        if top is None or top < 1:
            raise InvalidInput(f"top {top} must be at least 1.")
        if begin_id is None or end_id is None:
            snaps = [s for s in list_snapshots(t.name, limit=2)]
            if len(snaps) < 2:
                raise NotFound(
                    "The target has fewer than two snapshots: no range to take the top SQL of.",
                    "Take snapshots (`opscore snapshot take`) around the workload.",
                )
            begin_id = begin_id or min(s.snapshot_id for s in snaps)
            end_id = end_id or max(s.snapshot_id for s in snaps)
        df = top_statements(t.name, begin_id, end_id, limit=top, order_by="total_ms")
        stmts = [
            {"sql": r["query"], "database": r["datname"], "query_id": int(r["queryid"])}
            for _, r in df.iterrows()
            if r["query"]
        ]
        scope = {"kind": "top", "top": top, "begin_id": begin_id, "end_id": end_id}
    with repository.session() as repo:
        task_id = store.create_task(
            repo, t.target_id, name=name, scope=scope, database=database, clone=clone,
            statements=stmts,
        )  # fmt: skip
    return get_tuning_task(task_id)


def _task(repo: Any, row: dict[str, Any]) -> TuningTask:
    t = repo_targets.get_by_id(repo, row["target_id"])
    keep = {k: v for k, v in row.items() if k in TuningTask.__dataclass_fields__}
    task = TuningTask(target=t.name, **keep)  # type: ignore[arg-type]
    task.statements = store.statements(repo, row["task_id"])
    task.recommendations = int(row.get("recommendations") or 0)
    return task


def get_tuning_task(task_id: int) -> TuningTask:
    """A task with its status, progress and statements (with their findings once executed)."""
    with repository.session() as repo:
        row = store.task(repo, int(task_id))
        if row is None:
            raise NotFound(f"No tuning task {task_id}.", "See `opscore sql tune list`.")
        task = _task(repo, row)
        task.recommendations = len(store.recommendations(repo, int(task_id)))
    return task


def list_tuning_tasks(target: str | None = None) -> list[TuningTask]:
    """Tuning tasks, newest first."""
    tid = get_target(target).target_id if target else None
    with repository.session() as repo:
        return [_task(repo, r) for r in store.tasks(repo, tid)]


def execute_tuning_task(
    task_id: int,
    *,
    runs: int = 3,
    execute: bool = True,
    timeout_ms: int = 30000,
    progress: Callable[[str], None] | None = None,
) -> TuningTask:
    """Analyse every statement of the task (see the module), store the recommendations, and
    return the task (status done, or failed with the error)."""
    if not 1 <= runs <= 50:
        raise InvalidInput(f"runs {runs} must be from 1 to 50.")
    task = get_tuning_task(task_id)
    t = get_target(task.target)
    with repository.session() as repo:
        store.set_status(repo, task_id, "running", progress="starting")
    try:
        for i, st in enumerate(task.statements, 1):
            msg = f"statement {i} of {len(task.statements)}"
            with repository.session() as repo:
                store.set_progress(repo, task_id, msg)
            if progress:
                progress(msg)
            db = st["database"] or task.database
            dsn = make_conninfo(target_dsn(t), dbname=db) if db else target_dsn(t)
            clone_dsn = _clone_dsn(task.clone, db or connection.parse_dsn(dsn).get("dbname"))
            try:
                with connection.monitoring_session(dsn) as conn:
                    adv = advisor.advise(
                        conn, st["sql"], clone_dsn=clone_dsn, execute=execute, runs=runs,
                        timeout_ms=timeout_ms,
                    )  # fmt: skip
                findings = {
                    "plan_method": adv.plan_method,
                    "plan_reason": adv.plan_reason,
                    "executed": adv.executed,
                    "why_not_executed": adv.why_not_executed,
                    "before_ms": adv.before_ms,
                    "misestimates": adv.misestimates,
                    "parameters": adv.parameters,
                    "executed_sql": adv.executed_sql if adv.executed else None,
                }
                recs = [r.as_dict() for r in adv.recommendations]
            except structure.ParseFailed as exc:
                findings = {"error": f"The SQL does not parse: {exc}"}
                recs = []
            with repository.session() as repo:
                store.store_statement(repo, task_id, st["seq"], findings, recs)
    except Exception as exc:
        with repository.session() as repo:
            store.set_status(repo, task_id, "failed", error=str(exc).strip()[:2000])
        raise
    with repository.session() as repo:
        store.set_status(repo, task_id, "done", progress=f"{len(task.statements)} analysed")
    return get_tuning_task(task_id)


def tuning_recommendations(task_id: int) -> list[TuningRecommendation]:
    """The recommendations of a task: type, sql, rationale, method (hypopg / clone / target),
    before_ms, after_ms, measured_speedup (null when not measured, with why_not)."""
    get_tuning_task(task_id)
    with repository.session() as repo:
        return [TuningRecommendation(**r) for r in store.recommendations(repo, int(task_id))]


def delete_tuning_task(task_id: int) -> TuningTask:
    task = get_tuning_task(task_id)
    with repository.session() as repo:
        store.delete_task(repo, int(task_id))
    return task


def _rec(rec_id: int) -> tuple[dict[str, Any], TuningTask]:
    with repository.session() as repo:
        r = store.recommendation(repo, int(rec_id))
    if r is None:
        raise NotFound(f"No recommendation {rec_id}.", "See `opscore sql tune recommendations`.")
    return r, get_tuning_task(r["task_id"])


def accept_recommendation(rec_id: int, *, requested_by: str = "opscore") -> AcceptResult:
    """Act on a recommendation through the target's action policy: an index is created
    (CREATE INDEX CONCURRENTLY, feature create_index), stale statistics analysed (feature
    analyze); a setting becomes a SQL profile. Under the default report_only policy the action
    is journaled with its SQL and nothing runs."""
    r, task = _rec(rec_id)
    t = get_target(task.target)
    st = next(s for s in task.statements if s["seq"] == r["seq"])
    db = st["database"] or task.database
    dsn = make_conninfo(target_dsn(t), dbname=db) if db else target_dsn(t)
    evidence = {"task_id": task.task_id, "rec_id": rec_id, "rationale": r["rationale"]}
    evidence.update({k: r[k] for k in ("method", "before_ms", "after_ms", "measured_speedup")})
    if r["type"] == "index":
        spec = structure.parse(r["sql"])
        schema, table = spec.relation.schemaname or "public", spec.relation.relname
        cols = [p.name for p in spec.indexParams]
        action = actions.create_index(
            schema, table, cols, name=spec.idxname, why=r["rationale"], evidence=evidence,
            requested_by=requested_by,
        )  # fmt: skip
    elif r["type"] == "statistics":
        stmt = structure.parse(r["sql"])
        rel = stmt.rels[0].relation
        action = actions.analyze_table(
            rel.schemaname or "public", rel.relname, why=r["rationale"], evidence=evidence,
            requested_by=requested_by,
        )  # fmt: skip
    elif r["type"] == "setting":
        p = create_sql_profile(rec_id)
        return AcceptResult(rec_id, r["type"], "profile", profile_id=p.profile_id)
    else:
        raise InvalidInput(
            f"A {r['type']} recommendation is advice for the application (its SQL); "
            "opscore does not change application code.",
            "Apply the rewrite in the application.",
        )
    with repository.session() as repo:
        res = actions.perform(repo, t.target_id, dsn, action)
        store.mark_recommendation(repo, rec_id, action_id=res.action_id)
    return AcceptResult(rec_id, r["type"], res.outcome, action_id=res.action_id)


# ------------------------------------------------------------------------------ profiles
def _profile(repo: Any, row: dict[str, Any]) -> SqlProfile:
    t = repo_targets.get_by_id(repo, row.pop("target_id"))
    return SqlProfile(target=t.name, **row)


def create_sql_profile(
    rec_id: int | None = None,
    *,
    target: str | None = None,
    sql: str | None = None,
    settings: dict[str, str] | None = None,
    name: str | None = None,
) -> SqlProfile:
    """A profile from a measured setting recommendation (``rec_id``), or from a statement and
    settings given (then unmeasured until a task measures it)."""
    if rec_id is not None:
        r, task = _rec(rec_id)
        if r["type"] != "setting":
            raise InvalidInput(f"Recommendation {rec_id} is a {r['type']}, not a setting.")
        st = next(s for s in task.statements if s["seq"] == r["seq"])
        t = get_target(task.target)
        row = {
            "name": name or f"task{task.task_id}_rec{rec_id}",
            "query_id": st["query_id"],
            "database": st["database"] or task.database,
            "sql": st["sql"],
            "settings": r["evidence"]["settings"],
            "before_ms": r["before_ms"],
            "after_ms": r["after_ms"],
            "measured_speedup": r["measured_speedup"],
            "rec_id": rec_id,
        }
    else:
        if not (target and sql and settings):
            raise InvalidInput("Give a recommendation id, or target, sql and settings.")
        _parse_or_refuse(sql)
        bad = sorted(set(settings) - whatif.PLANNER_SETTINGS)
        if bad:
            raise InvalidInput(
                f"Not planner settings: {', '.join(bad)}.",
                "Use " + ", ".join(sorted(whatif.PLANNER_SETTINGS)) + ".",
            )
        t = get_target(target)
        row = {
            "name": name or "profile",
            "query_id": None,
            "database": None,
            "sql": sql,
            "settings": {k: str(v) for k, v in settings.items()},
            "before_ms": None,
            "after_ms": None,
            "measured_speedup": None,
            "rec_id": None,
        }
    with repository.session() as repo:
        pid = store.create_profile(repo, t.target_id, row)
        if rec_id is not None:
            store.mark_recommendation(repo, rec_id, profile_id=pid)
        return _profile(repo, store.profile(repo, pid) or {})


def list_sql_profiles(target: str | None = None) -> list[SqlProfile]:
    tid = get_target(target).target_id if target else None
    with repository.session() as repo:
        return [_profile(repo, r) for r in store.profiles(repo, tid)]


def _get_profile(profile_id: int) -> SqlProfile:
    with repository.session() as repo:
        row = store.profile(repo, int(profile_id))
        if row is None:
            raise NotFound(f"No SQL profile {profile_id}.", "See `opscore sql profile list`.")
        return _profile(repo, row)


def set_sql_profile_enabled(profile_id: int, enabled: bool) -> SqlProfile:
    """Enable or disable a profile (an export of a disabled profile says it is disabled)."""
    _get_profile(profile_id)
    with repository.session() as repo:
        store.set_profile_enabled(repo, int(profile_id), bool(enabled))
    return _get_profile(profile_id)


def drop_sql_profile(profile_id: int) -> SqlProfile:
    p = _get_profile(profile_id)
    with repository.session() as repo:
        store.drop_profile(repo, int(profile_id))
    return p


_HINTS = {
    "enable_nestloop": ("off", "NoNestLoop"),
    "enable_hashjoin": ("off", "NoHashJoin"),
    "enable_mergejoin": ("off", "NoMergeJoin"),
    "enable_seqscan": ("off", "NoSeqScan"),
}


def export_sql_profile(
    profile_id: int, style: str = "set_local", *, role: str | None = None
) -> str:
    """A profile as text to apply: ``set_local`` (lines for the statement's transaction),
    ``alter_role`` / ``alter_database`` (apply to EVERY statement of that role or database:
    said in the output), or ``hints`` (a pg_hint_plan comment, only when the target has the
    extension)."""
    p = _get_profile(profile_id)
    head = f"-- opscore SQL profile {p.profile_id} {p.name!r}"
    if p.measured_speedup:
        head += f": measured {p.measured_speedup}x ({p.before_ms} ms -> {p.after_ms} ms)"
    if not p.enabled:
        head += " [DISABLED]"
    items = sorted(p.settings.items())
    if style == "set_local":
        body = "\n".join(f"SET LOCAL {k} = '{v}';" for k, v in items)
    elif style in ("alter_role", "alter_database"):
        if style == "alter_role" and not role:
            raise InvalidInput("alter_role needs the role name (role=...).")
        who = (
            f'ROLE "{role}"' if style == "alter_role" else f'DATABASE "{p.database or "postgres"}"'
        )
        body = (
            "-- applies to every statement of this "
            + ("role" if style == "alter_role" else "database")
            + ", not only the profiled one\n"
            + "\n".join(f"ALTER {who} SET {k} = '{v}';" for k, v in items)
        )
    elif style == "hints":
        t = get_target(p.target)
        with connection.monitoring_session(target_dsn(t)) as conn:
            ok, _ = _has_extension(conn, "pg_hint_plan")
        if not ok:
            raise NotSupported(
                "The target has no pg_hint_plan extension: hints would be ignored.",
                "Use set_local, or install pg_hint_plan on the target.",
            )
        hints = [f"Set({k} {v})" for k, v in items if k not in _HINTS]
        hints += [h for k, v in items if k in _HINTS and v == _HINTS[k][0] for h in [_HINTS[k][1]]]
        body = f"/*+ {' '.join(hints)} */ {p.sql}"
    else:
        raise InvalidInput(
            f"Unknown export style {style!r}.", "Use set_local, alter_role, alter_database, hints."
        )
    return f"{head}\n{body}\n"


def _has_extension(conn: Any, name: str) -> tuple[bool, str | None]:
    from ..collectors import sqltune_reads

    return sqltune_reads.has_extension(conn, name)


# ---------------------------------------------------------------- plan cache, adaptive
def _last_range(target: str, begin_id: int | None, end_id: int | None) -> tuple[int, int]:
    if begin_id is not None and end_id is not None:
        return begin_id, end_id
    snaps = list_snapshots(target, limit=2)
    if len(snaps) < 2:
        raise NotFound(
            "The target has fewer than two snapshots.", "Take snapshots (`opscore snapshot take`)."
        )
    return min(s.snapshot_id for s in snaps), max(s.snapshot_id for s in snaps)


def _planning(target: str, begin_id: int | None, end_id: int | None) -> pd.DataFrame:
    t = get_target(target)
    b, e = _last_range(t.name, begin_id, end_id)
    with repository.session() as repo:
        rr = ranges.range_read(repo, t.target_id, t.name, b, e)
        st = reads.statements_frame(repo, rr.plan, opscore_shown(None))
    if st.empty:
        return pd.DataFrame(
            columns=["queryid", "datname", "query", "plans", "calls", "plan_ms", "exec_ms"]
        )
    df = pd.DataFrame(
        {
            "queryid": st["queryid"],
            "datname": st["datname"],
            "query": st["query"],
            "plans": st["plans"].astype("int64") if "plans" in st else 0,
            "calls": st["calls"].astype("int64"),
            "plan_ms": st["total_plan_time"].astype("float64"),
            "exec_ms": st["total_exec_time"].astype("float64"),
        }
    )
    df = df[(df["calls"] > 0) | (df["plans"] > 0)]
    df["mean_plan_ms"] = df["plan_ms"] / df["plans"].where(df["plans"] > 0)
    df["mean_exec_ms"] = df["exec_ms"] / df["calls"].where(df["calls"] > 0)
    df["plans_per_call"] = df["plans"] / df["calls"].where(df["calls"] > 0)
    df["planning_dominates"] = df["plan_ms"] > df["exec_ms"]
    df.attrs.update(begin_id=b, end_id=e)
    return df


def plan_cache_statistics(
    target: str, begin_id: int | None = None, end_id: int | None = None
) -> dict[str, Any]:
    """PostgreSQL's "plan cache" as pg_stat_statements' planning counters over a snapshot range
    (default the last two snapshots): plans vs calls (a plan per call: no plan reuse),
    planning vs execution time, the statements where planning dominates. Planning counters
    need pg_stat_statements.track_planning = on (zero plans otherwise: said in ``note``)."""
    df = _planning(target, begin_id, end_id)
    plans, calls = int(df["plans"].sum()), int(df["calls"].sum())
    out = {
        "begin_id": df.attrs.get("begin_id"),
        "end_id": df.attrs.get("end_id"),
        "statements": len(df),
        "plans": plans,
        "calls": calls,
        "plans_per_call": round(plans / calls, 3) if calls else None,
        "plan_ms": float(df["plan_ms"].sum()),
        "exec_ms": float(df["exec_ms"].sum()),
        "planning_dominated_statements": int(df["planning_dominates"].sum()),
        "note": None,
    }
    if calls and not plans:
        out["note"] = (
            "No planning was counted: pg_stat_statements.track_planning is off on the target "
            "(set it on to see plans and planning time)."
        )
    return out


def plan_cache_entries(
    target: str, begin_id: int | None = None, end_id: int | None = None, limit: int = 50
) -> pd.DataFrame:
    """Statements by planning time: plans, calls, plans per call, mean plan vs exec ms,
    whether planning dominates (a candidate for a prepared statement / plan reuse)."""
    if limit < 1:
        raise InvalidInput(f"limit {limit} must be at least 1.")
    df = _planning(target, begin_id, end_id)
    return df.sort_values("plan_ms", ascending=False).head(limit).reset_index(drop=True)


def adaptive_statistics(target: str) -> pd.DataFrame:
    """Estimate-vs-actual misestimates (10x or more) per table and plan node, from the
    EXPLAIN ANALYZE runs of the target's tuning tasks, worst first."""
    t = get_target(target)
    with repository.session() as repo:
        rows = store.all_misestimates(repo, t.target_id)
    cols = [
        "task_id", "seq", "database", "schema", "table", "node", "filter", "estimated_rows",
        "actual_rows", "factor",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def adaptive_suggestions(target: str) -> list[dict[str, Any]]:
    """What to do about the misestimates: per table, ANALYZE (and, when the filter compares
    several columns, CREATE STATISTICS on them; a single skewed column: a higher statistics
    target), with the worst factor seen."""
    df = adaptive_statistics(target)
    out = []
    for (schema, table), g in df.groupby(["schema", "table"], dropna=False):
        worst = g.sort_values("factor", ascending=False).iloc[0]
        cols = sorted({c for f in g["filter"].dropna() for c in _filter_cols(str(f))})
        ident = f'"{schema}"."{table}"'
        sugg = [f"ANALYZE {ident};"]
        if len(cols) >= 2:
            sugg.append(
                f"CREATE STATISTICS ON {', '.join(cols[:8])} FROM {ident}; ANALYZE {ident};"
            )
        elif cols:
            sugg.append(
                f"ALTER TABLE {ident} ALTER COLUMN {cols[0]} SET STATISTICS 1000; ANALYZE {ident};"
            )
        out.append(
            {
                "schema": schema,
                "table": table,
                "worst_factor": float(worst["factor"]),
                "estimated_rows": float(worst["estimated_rows"]),
                "actual_rows": float(worst["actual_rows"]),
                "columns": cols,
                "suggestions": sugg,
            }
        )
    return sorted(out, key=lambda x: -x["worst_factor"])


def _filter_cols(text: str) -> list[str]:
    from ..analysis.addm.indexfind import filter_columns

    return [c for c in filter_columns(text) if c]
