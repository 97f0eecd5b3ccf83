"""Quotas: a limit on the size of a database, schema or tablespace, or on the connections of
a database or role, measured on the target by the ``quotas`` flow (``evaluate_quotas``).

At the soft limit a quota is in state ``soft`` (the alert metric ``quota_used_pct`` reaches
100); at the hard limit ``hard``, and with ``enforce`` opscore acts through the actions module
(feature ``quota_enforce``: policy, journal, the way back):

- connections of a role or database: ``ALTER ROLE/DATABASE ... CONNECTION LIMIT <hard>``;
- size of a schema or tablespace: ``REVOKE CREATE`` from every grantee but the owner, so no
  new table or index lands there. PostgreSQL cannot cap the size of existing objects, nor of a
  database: a database size quota is measured and alerted, never enforced.

The enforcement is reverted (the previous limit or grants put back) once the measure is back
under the soft limit (under the hard limit when there is no soft one), and when the quota is
deleted or its enforcement switched off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from .. import repository
from ..collectors import resources as reads
from ..errors import InvalidInput, OpsCoreError
from ..model.target import Target
from ..repository import quotas as store
from ..repository import targets as repo_targets
from ..repository.quotas import QuotaRow
from ..targets import actions
from .targets import resolve_target, target_dsn, target_session

__all__ = [
    "QUOTA_KINDS",
    "Quota",
    "QuotaResult",
    "QuotaRun",
    "set_quota",
    "list_quotas",
    "get_quota",
    "delete_quota",
    "evaluate_quotas",
]

#: (scope, metric) -> how a hard limit is enforced (None: measured and alerted only)
QUOTA_KINDS: dict[tuple[str, str], str | None] = {
    ("database", "size_bytes"): None,
    ("database", "connections"): "ALTER DATABASE ... CONNECTION LIMIT <hard>",
    ("role", "connections"): "ALTER ROLE ... CONNECTION LIMIT <hard>",
    ("schema", "size_bytes"): "REVOKE CREATE ON SCHEMA from every grantee but the owner",
    ("tablespace", "size_bytes"): "REVOKE CREATE ON TABLESPACE from every grantee but the owner",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB|TB)?", re.I)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


@dataclass
class Quota:
    target: str
    name: str
    scope: str
    object: str
    metric: str
    soft_limit: float | None
    hard_limit: float | None
    enforce: bool
    enforcement: str | None  # what enforcing does for this kind (None: measured only)
    status: str  # not evaluated, ok, soft, hard, not available
    measured: float | None
    measured_at: datetime | None
    reason: str | None
    enforced: bool
    enforced_action_id: int | None
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class QuotaResult:
    target: str
    quota: str
    status: str
    measured: float | None
    message: str
    action_id: int | None = None


@dataclass
class QuotaRun:
    evaluated_at: datetime
    quotas: int
    breaches: int
    enforced: int
    reverted: int
    results: list[QuotaResult]


def _quota(t_name: str, r: QuotaRow, events: list[dict[str, Any]] | None = None) -> Quota:
    return Quota(
        target=t_name,
        name=r.name,
        scope=r.scope,
        object=r.object,
        metric=r.metric,
        soft_limit=r.soft_limit,
        hard_limit=r.hard_limit,
        enforce=r.enforce,
        enforcement=QUOTA_KINDS[(r.scope, r.metric)],
        status=r.status,
        measured=r.measured,
        measured_at=r.measured_at,
        reason=r.reason,
        enforced=r.enforced_action_id is not None,
        enforced_action_id=r.enforced_action_id,
        events=events or [],
    )


def _limit(value: float | int | str | None, metric: str, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{what} {value!r} is not a limit.")
    if isinstance(value, int | float):
        n = float(value)
    else:
        m = _SIZE.fullmatch(value.strip())
        if not m or (m.group(2) and metric != "size_bytes"):
            raise InvalidInput(
                f"{what} {value!r} is not a limit for {metric}.",
                "Give a size such as 500MB or 2GB" if metric == "size_bytes" else "Give a count.",
            )
        n = float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()]
    if not n >= 0 or n == float("inf"):
        raise InvalidInput(f"{what} {value!r} is out of range.", "Give 0 or more.")
    if metric == "connections" and n != int(n):
        raise InvalidInput(f"{what} {value!r} is not a whole number of connections.")
    return n


# ------------------------------------------------------------------------ enforcement

_I, _L = sql.Identifier, sql.Literal


def _grantee(name: str) -> sql.Composable:
    return sql.SQL("PUBLIC") if name == "PUBLIC" else _I(name)


def _grants(kind: str, obj: str, grantees: list[str], revoke: bool) -> list[sql.Composable]:
    word = "REVOKE CREATE ON {} {} FROM {}" if revoke else "GRANT CREATE ON {} {} TO {}"
    return [
        sql.SQL(word).format(sql.SQL(kind), _I(obj), _grantee(g))  # type: ignore[arg-type]
        for g in grantees
    ]


def _enforcement(
    conn: psycopg.Connection, q: QuotaRow
) -> tuple[list[sql.Composable], list[sql.Composable], dict[str, Any], str, tuple] | None:
    """(statements, the way back, the state to keep, state SQL, its params) for enforcing
    ``q`` now; None when there is nothing to do (no grantee to revoke)."""
    hard = int(q.hard_limit or 0)
    if q.scope == "role":
        before = reads.roles(conn, [q.object]).get(q.object)
        if before is None:
            return None
        n = int(before["connection_limit"])
        alter = "ALTER ROLE {} CONNECTION LIMIT {}"
        return (
            [sql.SQL(alter).format(_I(q.object), _L(hard))],
            [sql.SQL(alter).format(_I(q.object), _L(n))],
            {"connection_limit": n},
            actions.ROLE_STATE,
            ([q.object],),
        )
    if q.scope == "database" and q.metric == "connections":
        n_db = reads.database_conn_limit(conn, q.object)
        if n_db is None:
            return None
        alter = "ALTER DATABASE {} CONNECTION LIMIT {}"
        return (
            [sql.SQL(alter).format(_I(q.object), _L(hard))],
            [sql.SQL(alter).format(_I(q.object), _L(n_db))],
            {"connection_limit": n_db},
            reads.DATABASE_STATE,
            (q.object,),
        )
    kind = "SCHEMA" if q.scope == "schema" else "TABLESPACE"
    grantees = reads.create_grantees(conn, q.scope, q.object)
    if not grantees:
        return None
    return (
        _grants(kind, q.object, grantees, revoke=True),
        _grants(kind, q.object, grantees, revoke=False),
        {"grantees": grantees},
        reads.ACL_STATE[q.scope],
        (q.object,),
    )


def _revert_statements(q: QuotaRow) -> list[sql.Composable]:
    before = q.enforced_before or {}
    if q.scope == "role":
        alter = "ALTER ROLE {} CONNECTION LIMIT {}"
        return [sql.SQL(alter).format(_I(q.object), _L(int(before["connection_limit"])))]
    if q.scope == "database":
        alter = "ALTER DATABASE {} CONNECTION LIMIT {}"
        return [sql.SQL(alter).format(_I(q.object), _L(int(before["connection_limit"])))]
    kind = "SCHEMA" if q.scope == "schema" else "TABLESPACE"
    return _grants(kind, q.object, list(before.get("grantees", [])), revoke=False)


def _act(
    repo: psycopg.Connection,
    t: Target,
    q: QuotaRow,
    what: str,
    stmts: list[sql.Composable],
    undo: list[sql.Composable] | None,
    evidence: dict[str, Any],
    state: tuple[str, tuple] | None,
) -> actions.ActionResult:
    action = actions.role_statements(
        "quota_enforce",
        what,
        stmts,
        undo=undo,
        why=f"quota {q.name!r}: {q.scope} {q.object} {q.metric}",
        evidence=evidence,
        state_sql=state[0] if state else None,
        state_params=state[1] if state else (),
    )
    return actions.perform(repo, t.target_id, target_dsn(t), action)


def _revert(repo: psycopg.Connection, t: Target, q: QuotaRow, why: str) -> QuotaResult:
    res = _act(
        repo,
        t,
        q,
        f"revert quota {q.name!r} on {q.scope} {q.object!r}",
        _revert_statements(q),
        None,
        {"quota": q.name, "measured": q.measured, "why": why, "before": q.enforced_before},
        None,
    )
    if res.done:
        store.set_enforced(repo, q.quota_id, None, None)
        store.add_event(repo, q.quota_id, "reverted", q.measured, why, res.action_id)
    return QuotaResult(t.name, q.name, q.status, q.measured, f"reverted: {why}", res.action_id)


# ------------------------------------------------------------------------ operations


def set_quota(
    name: str,
    scope: str,
    object: str,  # noqa: A002 - the object the quota is on
    metric: str,
    soft_limit: float | int | str | None = None,
    hard_limit: float | int | str | None = None,
    enforce: bool = False,
    target: str | None = None,
) -> Quota:
    """Create or change a quota. ``scope``: database, schema (of the target's database),
    tablespace or role; ``metric``: size_bytes or connections; limits as numbers or sizes
    (500MB). ``enforce`` acts at the hard limit (see the module); a database size cannot be
    enforced. Evaluated by ``evaluate_quotas`` (the quotas flow)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"Quota name {name!r} is not a name.",
            "Use letters, digits and _ . : - (up to 63, a letter or digit first).",
        )
    if (scope, metric) not in QUOTA_KINDS:
        raise InvalidInput(
            f"A quota cannot measure {metric!r} of a {scope!r}.",
            "Use one of: " + ", ".join(f"{s} {m}" for s, m in QUOTA_KINDS) + ".",
        )
    if not isinstance(object, str) or not object.strip() or len(object) > 63:
        raise InvalidInput("The quota's object must be a name (up to 63 characters).")
    soft = _limit(soft_limit, metric, "soft_limit")
    hard = _limit(hard_limit, metric, "hard_limit")
    if soft is None and hard is None:
        raise InvalidInput("A quota needs a soft or a hard limit.", "Give --soft or --hard.")
    if soft is not None and hard is not None and soft > hard:
        raise InvalidInput(
            f"The soft limit ({soft:g}) is above the hard limit ({hard:g}).",
            "The soft limit warns before the hard one: make it smaller.",
        )
    if enforce and QUOTA_KINDS[(scope, metric)] is None:
        raise InvalidInput(
            "PostgreSQL cannot cap the size of a database: this quota can be measured and "
            "alerted, not enforced.",
            "Drop --enforce (or put size quotas with enforcement on its schemas).",
        )
    if enforce and hard is None:
        raise InvalidInput("Enforcement acts at the hard limit: give one.", "Add --hard.")
    t = resolve_target(target)
    with repository.session() as repo:
        old = next((q for q in store.all_for(repo, t.target_id) if q.name == name), None)
        if old is not None and old.enforced_action_id is not None:
            if (old.scope, old.object, old.metric) != (scope, object, metric) or not enforce:
                _revert(repo, t, old, "the quota was changed")
        row = store.upsert(repo, t.target_id, name, scope, object, metric, soft, hard, enforce)
    return _quota(t.name, row)


def list_quotas(target: str | None = None) -> list[Quota]:
    """Quotas with their latest evaluation (one target, or all when ``target`` is None and
    several are registered)."""
    with repository.session() as repo:
        targets = {t.target_id: t.name for t in repo_targets.all_targets(repo)}
        tid = resolve_target(target).target_id if target or len(targets) == 1 else None
        return [_quota(targets[q.target_id], q) for q in store.all_for(repo, tid)]


def get_quota(name: str, target: str | None = None) -> Quota:
    """One quota with its latest evaluation and its events (breaches, enforcement)."""
    t = resolve_target(target)
    with repository.session() as repo:
        q = store.get(repo, t.target_id, name)
        return _quota(t.name, q, store.events(repo, q.quota_id))


def delete_quota(name: str, target: str | None = None) -> Quota:
    """Delete a quota; an enforcement in force is reverted first (journaled)."""
    t = resolve_target(target)
    with repository.session() as repo:
        q = store.get(repo, t.target_id, name)
        if q.enforced_action_id is not None:
            _revert(repo, t, q, "the quota was deleted")
            q = store.get(repo, t.target_id, name)
        store.delete(repo, q.quota_id)
    return _quota(t.name, q)


def _status(q: QuotaRow, measured: float) -> str:
    if q.hard_limit is not None and measured >= q.hard_limit:
        return "hard"
    if q.soft_limit is not None and measured >= q.soft_limit:
        return "soft"
    return "ok"


def _evaluate_one(
    repo: psycopg.Connection, t: Target, conn: psycopg.Connection, q: QuotaRow
) -> QuotaResult:
    measured = reads.measure(conn, q.scope, q.metric, q.object)
    if measured is None:
        reason = f"{q.scope} {q.object!r} does not exist on the target"
        store.put_state(repo, q.quota_id, "not available", None, reason)
        return QuotaResult(t.name, q.name, "not available", None, reason)
    status = _status(q, measured)
    limit = q.hard_limit if status == "hard" else q.soft_limit
    reason = (
        f"{measured:g} >= {status} limit {limit:g}"
        if status != "ok"
        else f"{measured:g} under the limits"
    )
    if status != q.status:
        store.add_event(repo, q.quota_id, status, measured, reason)
    store.put_state(repo, q.quota_id, status, measured, reason)
    q.status, q.measured = status, measured
    result = QuotaResult(t.name, q.name, status, measured, reason)
    if q.enforced_action_id is not None:
        back_under = q.soft_limit if q.soft_limit is not None else q.hard_limit
        if not q.enforce or (back_under is not None and measured < back_under):
            return _revert(repo, t, q, f"{measured:g} back under {back_under:g}")
        return result
    if status == "hard" and q.enforce:
        plan = _enforcement(conn, q)
        if plan is None:
            result.message += "; nothing to enforce (no grantee but the owner)"
            return result
        stmts, undo, before, state_sql, state_params = plan
        try:
            res = _act(
                repo,
                t,
                q,
                f"enforce quota {q.name!r} on {q.scope} {q.object!r}",
                stmts,
                undo,
                {"quota": q.name, "measured": measured, "hard_limit": q.hard_limit},
                (state_sql, state_params),
            )
        except (OpsCoreError, psycopg.Error) as exc:
            msg = getattr(exc, "message", None) or str(exc).strip()
            store.add_event(repo, q.quota_id, "enforce failed", measured, msg)
            result.message += f"; enforcement failed: {msg}"
            return result
        result.action_id = res.action_id
        if res.done:
            store.set_enforced(repo, q.quota_id, res.action_id, before)
            store.add_event(repo, q.quota_id, "enforced", measured, reason, res.action_id)
            result.message += "; enforced"
        else:
            result.message += f"; enforcement {res.outcome} (policy {res.mode})"
    return result


def evaluate_quotas(target: str | None = None) -> QuotaRun:
    """Measure every quota (of one target, or all), record its state and events, enforce at
    the hard limit where asked and allowed, revert when back under. What the quotas flow
    runs."""
    results: list[QuotaResult] = []
    with repository.session() as repo:
        targets = {t.target_id: t for t in repo_targets.all_targets(repo)}
        tid = resolve_target(target).target_id if target else None
        by_target: dict[int, list[QuotaRow]] = {}
        for q in store.all_for(repo, tid):
            by_target.setdefault(q.target_id, []).append(q)
        for t_id, quotas in by_target.items():
            t = targets[t_id]
            try:
                with target_session(t) as conn:
                    for q in quotas:
                        results.append(_evaluate_one(repo, t, conn, q))
            except (OpsCoreError, psycopg.Error) as exc:
                msg = getattr(exc, "message", None) or str(exc).strip()
                for q in quotas:
                    store.put_state(repo, q.quota_id, "not available", None, f"unreachable: {msg}")
                    results.append(
                        QuotaResult(t.name, q.name, "not available", None, f"unreachable: {msg}")
                    )
    return QuotaRun(
        evaluated_at=datetime.now(UTC),
        quotas=len(results),
        breaches=sum(r.status in ("soft", "hard") for r in results),
        enforced=sum(r.message.endswith("; enforced") for r in results),
        reverted=sum(r.message.startswith("reverted") for r in results),
        results=results,
    )
