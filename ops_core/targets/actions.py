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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ..errors import InvalidInput, OpsCoreError
from ..repository import actions as journal
from . import connection

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
    "index_ddl",
    "create_index",
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
        Feature("alter_system", "ALTER SYSTEM SET of a parameter (self-tuning)", "report_only"),
    )
}


class ActionRefused(OpsCoreError):
    """The policy of this target does not allow the action."""


@dataclass(frozen=True)
class Action:
    """One change to a target: a single statement with its values bound apart."""

    feature: str
    what: str  # one line: "restore point 'before-upgrade'"
    sql: str | sql.Composable
    params: tuple[Any, ...] = ()
    why: str = ""
    requested_by: str = "opscore"
    evidence: dict[str, Any] = field(default_factory=dict)
    #: a read-only query whose rows are the state before and after (None: not recorded)
    state_sql: str | sql.Composable | None = None
    state_params: tuple[Any, ...] = ()
    undo_sql: str | None = None  # the way back, when there is one
    #: VACUUM, CREATE INDEX CONCURRENTLY and friends cannot run inside a transaction block
    autocommit: bool = True

    def sql_text(self) -> str:
        return self.sql if isinstance(self.sql, str) else self.sql.as_string()


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


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _state(conn: psycopg.Connection, action: Action) -> Any:
    if action.state_sql is None:
        return None
    cur = conn.execute(action.state_sql, action.state_params)
    names = [d.name for d in cur.description or []]
    return _jsonable([dict(zip(names, r, strict=True)) for r in cur.fetchall()])


def perform(repo: psycopg.Connection, target_id: int, dsn: str, action: Action) -> ActionResult:
    """Apply ``action`` to the target at ``dsn`` as its policy allows, journaled.

    Raises :class:`ActionRefused` when the policy is ``off`` (journaled as refused); returns an
    ``outcome='reported'`` result, nothing executed, under ``report_only``. A failure of the
    statement is journaled (outcome failed, the error) and raised.
    """
    mode = policy(repo, target_id, action.feature)
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
        raise ActionRefused(
            f"The action policy of this target does not allow {action.feature!r} "
            f"({action.what}); it was journaled as refused (action {action_id}).",
            f"Allow it with set_action_policy(target, {action.feature!r}, 'implement') "
            "(or 'report_only' to journal what would run).",
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


def index_ddl(
    schema: str,
    table: str,
    columns: tuple[str, ...] | list[str],
    *,
    name: str | None = None,
    concurrently: bool = False,
) -> sql.Composed:
    """``CREATE INDEX [CONCURRENTLY] [name] ON schema.table (columns)``, identifiers quoted (the
    one place that composes it: actions below, hypopg's hypothetical indexes, clone trials)."""
    return sql.SQL("CREATE INDEX {conc}{name}ON {table} ({cols})").format(
        conc=sql.SQL("CONCURRENTLY " if concurrently else ""),
        name=sql.SQL("{} ").format(sql.Identifier(name)) if name else sql.SQL(""),
        table=sql.Identifier(schema, table),
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
    )


def create_index(
    schema: str,
    table: str,
    columns: tuple[str, ...] | list[str],
    *,
    name: str,
    why: str,
    evidence: dict[str, Any],
    requested_by: str = "opscore",
) -> Action:
    """``CREATE INDEX CONCURRENTLY name ON schema.table (columns)`` (no lock that stops
    writes); the way back is ``DROP INDEX CONCURRENTLY``. State: the table's indexes."""
    return Action(
        feature="create_index",
        what=f"create index {name} on {schema}.{table} ({', '.join(columns)})",
        sql=index_ddl(schema, table, columns, name=name, concurrently=True),
        why=why,
        evidence=evidence,
        requested_by=requested_by,
        state_sql="SELECT /* opscore */ indexrelid::regclass::text AS index, indisvalid "
        "FROM pg_index WHERE indrelid = to_regclass(%s)",
        state_params=(sql.Identifier(schema, table).as_string(),),
        undo_sql=sql.SQL("DROP INDEX CONCURRENTLY {};")
        .format(sql.Identifier(schema, name))
        .as_string(),
    )


@contextmanager
def trial_index_on_clone(
    clone_dsn: str, schema: str, table: str, columns: tuple[str, ...] | list[str]
) -> Iterator[psycopg.Connection]:
    """A connection to a clone (a server opscore restored from its own backup, never a
    monitored target) in an open transaction that has built the index for real; the index is
    visible to this connection only and is rolled back when the block ends. The transaction is
    read-only after the build: what runs in the block cannot write."""
    conn = connection.connect(
        clone_dsn, read_only=False, autocommit=True, application_name="opscore-trial"
    )
    try:
        conn.execute("BEGIN /* opscore */")
        conn.execute(index_ddl(schema, table, columns))
        conn.execute("SET /* opscore */ TRANSACTION READ ONLY")
        yield conn
    finally:
        try:
            conn.execute("ROLLBACK /* opscore */")
        finally:
            conn.close()
