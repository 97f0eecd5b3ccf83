"""SQL Tuning Advisor tasks (like Oracle's DBMS_SQLTUNE).

A task holds statements (a SQL text, a queryid from the repository, or the top N by DB time of
a snapshot range); executing it analyses each one (``ops_core.analysis.sqltune.advisor``):
statistics, what-if indexes (hypopg on the target when created there, else built for real on
a clone opscore restored; never a CREATE INDEX on the target), SQL structure with rewrites
executed and compared row for row, and planner settings tried as SET LOCAL. Read-only
statements are executed inside READ ONLY transactions that are rolled back, with a statement
timeout; a statement that writes is never executed (explain only, said so).

Acting on a recommendation and SQL profiles: :mod:`.sqlprofiles`; the plan cache and the
optimizer's misestimates: :mod:`.plancache`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from psycopg.conninfo import make_conninfo

from .. import repository
from ..analysis.sqltune import advisor, structure
from ..errors import InvalidInput, NotFound
from ..repository import perf_reads
from ..repository import sqltune as store
from ..repository import targets as repo_targets
from ..targets import connection
from .backup_remote import list_clones
from .performance import top_statements
from .snapshots import list_snapshots
from .targets import get_target, target_dsn

__all__ = [
    "TuningTask",
    "TuningRecommendation",
    "create_tuning_task",
    "list_tuning_tasks",
    "get_tuning_task",
    "execute_tuning_task",
    "tuning_recommendations",
    "delete_tuning_task",
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


# --------------------------------------------------------------------------------- tasks
def parse_or_refuse(text: str) -> None:
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
        parse_or_refuse(sql)
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
        recs = [TuningRecommendation(**r) for r in store.recommendations(repo, int(task_id))]
    _mark_covered(recs)
    return recs


def _index_key(sql: str | None) -> tuple[str, str, tuple[str, ...]] | None:
    try:
        spec = structure.parse(sql or "")
        rel = spec.relation
        return rel.schemaname or "public", rel.relname, tuple(p.name for p in spec.indexParams)
    except (structure.ParseFailed, AttributeError, TypeError):
        return None


def _mark_covered(recs: list[TuningRecommendation]) -> None:
    """An index whose columns lead another index advised by the same task (two statements of
    a top-N task), or repeat an earlier one, is served by that one: its
    ``evidence['covered_by']`` names it and its ``why_not`` says so, so applying the task's
    advice builds one index, not both."""
    keys = {r.rec_id: _index_key(r.sql) for r in recs if r.type == "index"}

    def covers(o: TuningRecommendation, k: tuple) -> bool:
        ok = keys.get(o.rec_id)
        if ok is None or ok[:2] != k[:2] or ok[2][: len(k[2])] != k[2]:
            return False
        return len(ok[2]) > len(k[2]) or o.rec_id < r.rec_id  # wider, or the same and earlier

    for r in recs:
        k = keys.get(r.rec_id)
        wider = [o for o in recs if k is not None and o.rec_id != r.rec_id and covers(o, k)]
        if wider:
            by = wider[0]
            r.evidence = {**r.evidence, "covered_by": by.rec_id}
            note = f"covered by recommendation {by.rec_id} ({', '.join(keys[by.rec_id][2])})"
            r.why_not = f"{r.why_not}; {note}" if r.why_not else note


def delete_tuning_task(task_id: int) -> TuningTask:
    task = get_tuning_task(task_id)
    with repository.session() as repo:
        store.delete_task(repo, int(task_id))
    return task


def recommendation_and_task(rec_id: int) -> tuple[dict[str, Any], TuningTask]:
    """A stored recommendation (as a dict) and its task; NotFound when there is none."""
    with repository.session() as repo:
        r = store.recommendation(repo, int(rec_id))
    if r is None:
        raise NotFound(f"No recommendation {rec_id}.", "See `opscore sql tune recommendations`.")
    return r, get_tuning_task(r["task_id"])
