"""The only code that changes a monitored server.

Monitoring sessions are read-only. Anything that writes to a target (a restore point,
terminating a session, CREATE/DROP INDEX, ALTER SYSTEM, ANALYZE, VACUUM, REINDEX) is an
:class:`Action` given to :func:`perform`, which

1. reads the policy of (target, feature): ``off`` (refused), ``report_only`` (journaled with
   the SQL that would run, nothing executed) or ``implement`` (executed); a feature without a
   policy row has the default of :data:`FEATURES`;
2. journals the request in the repository (``opscore.action_journal``, migration 0008) before
   anything runs: who asked, what, why, the evidence, the SQL, the way back;
3. when implemented, runs it in an explicit admin session (``application_name=opscore-admin``,
   the connection rules' timeouts), reads the state before and after when the action says how,
   and journals the outcome (done / failed, with the error).

The fault injectors of ``ops_core/workload/`` act on servers opscore owns (tests, the demo) and
are the one other place where statements that change a server run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ..errors import InvalidInput, OpsCoreError
from ..repository import actions as journal
from . import connection
from .action_model import Action
from .index_actions import create_index, drop_index, index_ddl, trial_index_on_clone

__all__ = [
    "MODES",
    "FEATURES",
    "Feature",
    "Action",
    "ActionResult",
    "ActionRefused",
    "policy",
    "set_policy",
    "perform",
    "restore_point",
    "create_replication_slot",
    "drop_replication_slot",
    "terminate_session",
    "analyze_table",
    "vacuum_table",
    "reindex_index",
    "drop_inactive_slot",
    "terminate_idle_blocker",
    "set_parameter",
    "reload_configuration",
    "effective_mode",
    "AUTONOMOUS",
    "role_statements",
    # built in index_actions, run by perform() like every other action
    "index_ddl",
    "create_index",
    "drop_index",
    "trial_index_on_clone",
]

MODES = ("off", "report_only", "implement")


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    default: str  # the mode when the target has no policy row for it


#: every kind of change opscore can make; the default mode is the safe one, except for actions
#: a user asks for by name (a restore point is an explicit request, not an autonomous change)
FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("restore_point", "pg_create_restore_point: a named WAL position", "implement"),
        Feature(
            "replication_slot",
            "create/drop opscore's physical replication slot for continuous WAL archiving",
            "implement",
        ),
        Feature("terminate_session", "pg_terminate_backend of a blocking session", "report_only"),
        Feature("cancel_query", "pg_cancel_backend of a running statement", "report_only"),
        Feature("create_index", "CREATE INDEX CONCURRENTLY (auto-indexing)", "report_only"),
        Feature("drop_index", "DROP INDEX CONCURRENTLY of an unused index", "report_only"),
        Feature("reindex", "REINDEX CONCURRENTLY of a bloated or invalid index", "report_only"),
        Feature("analyze", "ANALYZE of a table with stale statistics", "report_only"),
        Feature("vacuum", "VACUUM of a bloated table", "report_only"),
        Feature(
            "alter_system",
            "ALTER SYSTEM / ALTER DATABASE SET of a parameter (self-tuning)",
            "report_only",
        ),
        Feature(
            "drop_inactive_slot",
            "drop a replication slot no client uses (it keeps WAL): never by default",
            "off",
        ),
        # the autonomous features: one mode each, governing the changes they make
        Feature("self_healing", "self-healing acts on what its checks find", "off"),
        Feature("self_tuning", "self-tuning changes parameters and rolls back", "off"),
        Feature("auto_indexing", "auto-indexing creates, verifies and drops indexes", "off"),
        Feature(
            "resource_group",
            "CREATE/ALTER/DROP ROLE of an opscore resource group, GRANT/REVOKE of its members "
            "and their limits (ALTER ROLE ... SET, CONNECTION LIMIT)",
            "implement",
        ),
        Feature(
            "quota_enforce",
            "enforcement of a quota's hard limit (CONNECTION LIMIT, REVOKE CREATE) and its "
            "reversal",
            "report_only",
        ),
    )
}

#: the autonomous features (their mode governs the actions they request, see effective_mode)
AUTONOMOUS = ("self_healing", "self_tuning", "auto_indexing")


class ActionRefused(OpsCoreError):
    """The policy of this target does not allow the action."""


@dataclass(frozen=True)
class ActionResult:
    action_id: int
    mode: str
    outcome: str  # done / reported (report_only: nothing ran)
    rows: list[tuple[Any, ...]]  # the statement's result rows when it ran

    @property
    def done(self) -> bool:
        return self.outcome == "done"


def _check_feature(feature: str) -> Feature:
    try:
        return FEATURES[feature]
    except KeyError:
        raise InvalidInput(
            f"Unknown action feature {feature!r}.", "Use one of: " + ", ".join(FEATURES) + "."
        ) from None


def policy(repo: psycopg.Connection, target_id: int, feature: str) -> str:
    """The mode of ``feature`` on the target: its policy row, else the feature's default."""
    f = _check_feature(feature)
    return journal.get_mode(repo, target_id, feature) or f.default


def set_policy(
    repo: psycopg.Connection, target_id: int, feature: str, mode: str, by: str = "opscore"
) -> None:
    _check_feature(feature)
    if mode not in MODES:
        raise InvalidInput(f"Unknown action mode {mode!r}.", "Use off, report_only or implement.")
    journal.set_mode(repo, target_id, feature, mode, by)


def effective_mode(
    repo: psycopg.Connection, target_id: int, feature: str, governed_by: str | None = None
) -> str:
    """The mode an action of kind ``feature`` runs in.

    Asked by a user (``governed_by`` None): the policy of the kind. Requested by an autonomous
    feature: that feature's mode, made stricter by the kind's own policy when the kind has a
    policy row set for this target, or when its default is ``off`` (dropping a replication
    slot: never unless allowed by name). So `self_healing = implement` is enough to end an idle
    blocker, and a DBA who set `terminate_session = report_only` keeps it from doing so."""
    if governed_by is None:
        return policy(repo, target_id, feature)
    if governed_by not in AUTONOMOUS:
        raise InvalidInput(
            f"{governed_by!r} is not an autonomous feature.", "Use one of: " + ", ".join(AUTONOMOUS)
        )
    mode = policy(repo, target_id, governed_by)
    kind = _check_feature(feature)
    explicit = journal.get_mode(repo, target_id, feature)
    if explicit is None and kind.default != "off":
        return mode
    return min(mode, explicit or kind.default, key=MODES.index)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _state(conn: psycopg.Connection, action: Action) -> Any:
    if action.state_sql is None:
        return None
    cur = conn.execute(action.state_sql, action.state_params)
    names = [d.name for d in cur.description or []]
    return _jsonable([dict(zip(names, r, strict=True)) for r in cur.fetchall()])


def perform(
    repo: psycopg.Connection,
    target_id: int,
    dsn: str,
    action: Action,
    governed_by: str | None = None,
) -> ActionResult:
    """Apply ``action`` to the target at ``dsn`` as its policy allows, journaled.

    Raises :class:`ActionRefused` when the policy is ``off`` (journaled as refused); returns an
    ``outcome='reported'`` result, nothing executed, under ``report_only``. A failure of the
    statement is journaled (outcome failed, the error) and raised. ``governed_by``: the
    autonomous feature requesting it (see :func:`effective_mode`).
    """
    mode = effective_mode(repo, target_id, action.feature, governed_by)
    text = action.sql_text()
    outcome = {"off": "refused", "report_only": "reported", "implement": "started"}[mode]
    action_id = journal.start(
        repo,
        target_id=target_id,
        feature=action.feature,
        mode=mode,
        requested_by=action.requested_by,
        what=action.what,
        why=action.why,
        evidence=_jsonable(action.evidence),
        sql=text,
        params=_jsonable(list(action.params)),
        undo_sql=action.undo_sql,
        outcome=outcome,
    )
    if mode == "off":
        hint = (
            f"Allow it with set_action_policy(target, {action.feature!r}, 'implement') "
            "(or 'report_only' to journal what would run)."
        )
        if governed_by is not None:
            hint = (
                f"{governed_by} is off (or {action.feature!r} is off) for this target: "
                f"`opscore autonomous config set --feature {governed_by.split('_')[-1]} "
                "--mode report-only|implement`."
            )
        raise ActionRefused(
            f"The action policy of this target does not allow {action.feature!r} "
            f"({action.what}); it was journaled as refused (action {action_id}).",
            hint,
        )
    if mode == "report_only":
        return ActionResult(action_id, mode, "reported", [])
    before = after = None
    try:
        with connection.connect(
            dsn, read_only=False, autocommit=action.autocommit, application_name="opscore-admin"
        ) as admin:
            before = _state(admin, action)
            cur = admin.execute(action.sql, action.params)
            rows = cur.fetchall() if cur.description else []
            after = _state(admin, action)
            if action.state_sql is None:
                after = _jsonable([list(r) for r in rows])
    except Exception as exc:
        journal.finish(repo, action_id, "failed", before=before, error=str(exc).strip()[:2000])
        raise
    journal.finish(repo, action_id, "done", before=before, after=after)
    return ActionResult(action_id, mode, "done", rows)


# ------------------------------------------------------------------ the actions themselves


def restore_point(name: str, *, why: str, requested_by: str = "opscore") -> Action:
    """``pg_create_restore_point(name)``: a WAL record to recover to (no way back needed: it
    changes no data). The result row: lsn, timeline, time."""
    return Action(
        feature="restore_point",
        what=f"restore point {name!r}",
        sql="SELECT /* opscore */ pg_create_restore_point(%s)::text, "
        "(SELECT timeline_id FROM pg_control_checkpoint()), now()",
        params=(name,),
        why=why,
        requested_by=requested_by,
    )


_SLOT_STATE = (
    "SELECT /* opscore */ slot_name, active, restart_lsn::text FROM pg_replication_slots "
    "WHERE slot_name = %s"
)


def create_replication_slot(slot: str, *, why: str, requested_by: str = "opscore") -> Action:
    """A physical replication slot reserving WAL from now (if it does not exist yet): the
    server keeps WAL until opscore's receiver has it. The way back: drop it."""
    return Action(
        feature="replication_slot",
        what=f"create physical replication slot {slot!r}",
        sql="SELECT /* opscore */ pg_create_physical_replication_slot(%s, true) "
        "WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = %s)",
        params=(slot, slot),
        why=why,
        requested_by=requested_by,
        state_sql=_SLOT_STATE,
        state_params=(slot,),
        undo_sql=f"SELECT pg_drop_replication_slot('{slot}');",
    )


def drop_replication_slot(
    slot: str, *, why: str, evidence: dict[str, Any] | None = None, requested_by: str = "opscore"
) -> Action:
    """Drop a physical replication slot (if it exists): the server stops keeping WAL for it."""
    return Action(
        feature="replication_slot",
        what=f"drop physical replication slot {slot!r}",
        sql="SELECT /* opscore */ pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE slot_name = %s",
        params=(slot,),
        why=why,
        evidence=evidence or {},
        requested_by=requested_by,
        state_sql=_SLOT_STATE,
        state_params=(slot,),
    )


def terminate_session(
    pid: int, *, why: str, evidence: dict[str, Any], requested_by: str = "opscore"
) -> Action:
    """``pg_terminate_backend(pid)`` with the session's pg_stat_activity row before and after
    (no way back: the client reconnects)."""
    return Action(
        feature="terminate_session",
        what=f"terminate session pid {pid}",
        sql="SELECT /* opscore */ pg_terminate_backend(%s)",
        params=(pid,),
        why=why,
        evidence=evidence,
        requested_by=requested_by,
        state_sql="SELECT /* opscore */ pid, usename, datname, state, xact_start, query "
        "FROM pg_stat_activity WHERE pid = %s",
        state_params=(pid,),
    )


def analyze_table(
    schema: str, table: str, *, why: str, evidence: dict[str, Any], requested_by: str = "opscore"
) -> Action:
    """``ANALYZE schema.table`` with its last analyze times before and after."""
    return Action(
        feature="analyze",
        what=f"ANALYZE {schema}.{table}",
        sql=sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)),
        why=why,
        evidence=evidence,
        requested_by=requested_by,
        state_sql="SELECT /* opscore */ last_analyze, last_autoanalyze, n_mod_since_analyze "
        "FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
        state_params=(schema, table),
    )


def vacuum_table(
    schema: str,
    table: str,
    *,
    freeze: bool = False,
    why: str,
    evidence: dict[str, Any],
    requested_by: str = "opscore",
) -> Action:
    """``VACUUM (ANALYZE)`` (or ``VACUUM (FREEZE, ANALYZE)``) of one table, with its dead rows,
    vacuum times and frozen xid age before and after."""
    options = sql.SQL("(FREEZE, ANALYZE)" if freeze else "(ANALYZE)")
    return Action(
        feature="vacuum",
        what=f"VACUUM {'(FREEZE) ' if freeze else ''}{schema}.{table}",
        sql=sql.SQL("VACUUM {} {}").format(options, sql.Identifier(schema, table)),
        why=why,
        evidence=evidence,
        requested_by=requested_by,
        state_sql="SELECT /* opscore */ s.n_dead_tup, s.n_live_tup, s.last_vacuum, "
        "s.last_autovacuum, age(c.relfrozenxid)::int8 AS xid_age "
        "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        "WHERE s.schemaname = %s AND s.relname = %s",
        state_params=(schema, table),
    )


def reindex_index(
    schema: str, index: str, *, why: str, evidence: dict[str, Any], requested_by: str = "opscore"
) -> Action:
    """``REINDEX INDEX CONCURRENTLY`` of one index (PostgreSQL 12+), with its validity and size
    before and after."""
    return Action(
        feature="reindex",
        what=f"REINDEX INDEX CONCURRENTLY {schema}.{index}",
        sql=sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(schema, index)),
        why=why,
        evidence=evidence,
        requested_by=requested_by,
        state_sql="SELECT /* opscore */ i.indisvalid AS valid, pg_relation_size(c.oid) AS bytes "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        state_params=(schema, index),
    )


def drop_inactive_slot(
    slot: str, *, why: str, evidence: dict[str, Any], requested_by: str = "opscore"
) -> Action:
    """Drop a replication slot no client is using (feature ``drop_inactive_slot``, off unless
    allowed by name: its consumer loses its place). Only while it is still inactive."""
    return Action(
        feature="drop_inactive_slot",
        what=f"drop inactive replication slot {slot!r}",
        sql="SELECT /* opscore */ pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE slot_name = %s AND NOT active",
        params=(slot,),
        why=why,
        evidence=evidence,
        requested_by=requested_by,
        state_sql=_SLOT_STATE,
        state_params=(slot,),
    )


def terminate_idle_blocker(
    pid: int,
    xact_start: Any,
    *,
    why: str,
    evidence: dict[str, Any],
    requested_by: str = "opscore",
) -> Action:
    """``pg_terminate_backend(pid)`` only while the session is still idle in the transaction
    that was judged (same ``xact_start``): if it moved on between the judgement and the action,
    nothing is terminated (the result row says false)."""
    return Action(
        feature="terminate_session",
        what=f"terminate idle-in-transaction blocker pid {pid}",
        # the timeout (PostgreSQL 14+) waits until the process is gone, so the state read
        # after the action shows the outcome, not a session on its way out
        sql="SELECT /* opscore */ coalesce((SELECT pg_terminate_backend(pid, 5000) "
        "FROM pg_stat_activity WHERE pid = %s AND xact_start = %s "
        "AND state IN ('idle in transaction', 'idle in transaction (aborted)')), false)",
        params=(pid, xact_start),
        why=why,
        evidence=evidence,
        requested_by=requested_by,
        state_sql="SELECT /* opscore */ pid, usename, datname, state, xact_start, state_change "
        "FROM pg_stat_activity WHERE pid = %s",
        state_params=(pid,),
    )


def set_parameter(
    name: str,
    value: str | None,
    *,
    scope: str,
    database: str | None = None,
    undo_value: str | None = None,
    why: str,
    evidence: dict[str, Any],
    requested_by: str = "opscore",
) -> Action:
    """Set (``value``) or reset (None) a parameter: ``scope='database'``: ``ALTER DATABASE db
    SET`` (new sessions of that database; no reload), ``scope='system'``: ``ALTER SYSTEM SET``
    (needs :func:`reload_configuration` after). The way back sets ``undo_value`` (None: RESET).
    The state read before and after: the value a new session of the database sees and the
    database-level setting."""
    if scope == "database":
        if not database:
            raise InvalidInput("A database-scope parameter change needs the database name.")
        head = sql.SQL("ALTER DATABASE {} ").format(sql.Identifier(database))
    elif scope == "system":
        head = sql.SQL("ALTER SYSTEM ")
    else:
        raise InvalidInput(f"Unknown parameter scope {scope!r}.", "Use database or system.")

    def stmt(v: str | None) -> sql.Composed:
        if v is None:
            return head + sql.SQL("RESET {}").format(sql.Identifier(name))
        return head + sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(v))

    return Action(
        feature="alter_system",
        what=f"{'ALTER DATABASE ' + database if scope == 'database' else 'ALTER SYSTEM'} "
        f"{'RESET ' + name if value is None else f'SET {name} = {value}'}",
        sql=stmt(value),
        why=why,
        evidence=evidence,
        requested_by=requested_by,
        state_sql="SELECT /* opscore */ current_setting(%s) AS session_value, "
        "(SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s "
        "JOIN pg_database d ON d.oid = s.setdatabase "
        "WHERE d.datname = current_database() AND s.setrole = 0) AS database_settings",
        state_params=(name,),
        undo_sql=stmt(undo_value).as_string(None),
    )


def reload_configuration(*, why: str, requested_by: str = "opscore") -> Action:
    """``pg_reload_conf()``: the server re-reads its configuration (after ALTER SYSTEM)."""
    return Action(
        feature="alter_system",
        what="reload the configuration (pg_reload_conf)",
        sql="SELECT /* opscore */ pg_reload_conf()",
        why=why,
        requested_by=requested_by,
    )


#: roles' limits before and after a resource-group or quota change: connection limit, the
#: role-wide settings (ALTER ROLE ... SET) and the groups each role is a member of
ROLE_STATE = (
    "SELECT /* opscore */ r.rolname, r.rolconnlimit, "
    "(SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid "
    "AND s.setdatabase = 0) AS setconfig, "
    "ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
    "WHERE m.member = r.oid ORDER BY 1) AS member_of "
    "FROM pg_roles r WHERE r.rolname = ANY(%s) ORDER BY 1"
)


def role_statements(
    feature: str,
    what: str,
    statements: list[sql.Composable],
    *,
    undo: list[sql.Composable] | None,
    why: str,
    evidence: dict[str, Any] | None = None,
    state_sql: str | None = None,
    state_params: tuple[Any, ...] = (),
    requested_by: str = "opscore",
) -> Action:
    """Statements on roles, databases or schemas (CREATE/ALTER/DROP ROLE, GRANT/REVOKE, ALTER
    ... CONNECTION LIMIT) sent as one simple-protocol request: the server runs them in one
    implicit transaction, so all apply or none. Values are quoted by psycopg (``sql.Literal``),
    names by ``sql.Identifier``; ``undo`` is the way back, journaled as text."""
    if feature not in ("resource_group", "quota_enforce"):
        raise InvalidInput(f"role_statements is not for feature {feature!r}.")
    if not statements:
        raise InvalidInput(f"Nothing to do for {what}.")
    body = sql.SQL("; ").join(statements)
    undo_text = sql.SQL("; ").join(undo).as_string() + ";" if undo else None
    return Action(
        feature=feature,
        what=what,
        sql=body,
        why=why,
        evidence=evidence or {},
        requested_by=requested_by,
        state_sql=state_sql,
        state_params=state_params,
        undo_sql=undo_text,
    )
