"""SQL profiles, as far as PostgreSQL allows, and acting on a tuning recommendation.

PostgreSQL has no stored outlines or profiles: an opscore SQL profile is a verified set of
planner settings for one statement with its measured benefit, exported as SET LOCAL lines,
``ALTER ROLE/DATABASE ... SET`` (which apply to every statement of that role or database, not
just this one) or pg_hint_plan hints (only when the target has that extension). opscore does
not inject settings into a running application. Accepting a recommendation goes through the
target's action policy (``targets/actions.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from psycopg.conninfo import make_conninfo

from .. import repository
from ..analysis import whatif
from ..analysis.sqltune import structure
from ..collectors import sqltune_reads
from ..errors import InvalidInput, NotFound, NotSupported
from ..repository import sqltune as store
from ..repository import targets as repo_targets
from ..targets import actions, connection
from .sqltune import parse_or_refuse, recommendation_and_task
from .targets import get_target, target_dsn

__all__ = [
    "AcceptResult",
    "SqlProfile",
    "accept_recommendation",
    "create_sql_profile",
    "list_sql_profiles",
    "set_sql_profile_enabled",
    "drop_sql_profile",
    "export_sql_profile",
]


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


def accept_recommendation(rec_id: int, *, requested_by: str = "opscore") -> AcceptResult:
    """Act on a recommendation through the target's action policy: an index is created
    (CREATE INDEX CONCURRENTLY, feature create_index), stale statistics analysed (feature
    analyze); a setting becomes a SQL profile. Under the default report_only policy the action
    is journaled with its SQL and nothing runs."""
    r, task = recommendation_and_task(rec_id)
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
        r, task = recommendation_and_task(rec_id)
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
        parse_or_refuse(sql)
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
            ok, _ = sqltune_reads.has_extension(conn, "pg_hint_plan")
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
