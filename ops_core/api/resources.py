"""Resource groups: PostgreSQL group roles carrying limits for their members.

PostgreSQL has no resource manager. What it can enforce per role is a CONNECTION LIMIT and
role-wide settings (``ALTER ROLE ... SET``): ``statement_timeout``,
``idle_in_transaction_session_timeout``, ``work_mem`` and ``temp_file_limit``. A role's
settings are NOT inherited through membership (they apply to the role that logs in), so a
resource group here is

- a NOLOGIN role commented ``opscore resource group: <description>``, holding the group's
  limits as its own settings and connection limit (the record of what the group asks), and
- its members (``GRANT group TO member``), each given the group's limits as its own settings
  and CONNECTION LIMIT (what PostgreSQL enforces at the member's next login). A connection
  limit is per member role: a total across members cannot be enforced, the statistics show it.

Every change is one action of feature ``resource_group`` (ops_core/targets/actions.py: policy,
journal, the way back), its statements applied in one transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql

from .. import repository
from ..alerts.rules import parse_duration
from ..collectors import resources as reads
from ..errors import InvalidInput, OpsCoreError
from ..model.target import Target
from ..targets import actions
from .ash import ash_db_time
from .targets import resolve_target, target_dsn, target_session

__all__ = [
    "GROUP_LIMITS",
    "ResourceGroup",
    "GroupMemberUsage",
    "ResourceGroupStats",
    "create_resource_group",
    "list_resource_groups",
    "get_resource_group",
    "update_resource_group",
    "delete_resource_group",
    "resource_group_stats",
]

_TIME = re.compile(r"\d+\s*(us|ms|s|min|h|d)?")
_MEM = re.compile(r"\d+\s*(B|kB|MB|GB|TB)?")
#: the settings a group can limit, with the form of their values
GROUP_LIMITS: dict[str, str] = {
    "statement_timeout": "a duration: 30s, 500ms, 5min (0 = no limit)",
    "idle_in_transaction_session_timeout": "a duration: 60s, 10min (0 = no limit)",
    "work_mem": "a size: 4MB, 64MB, 1GB",
    "temp_file_limit": "a size: 1GB (-1 = no limit)",
}
_FORMS = {
    "statement_timeout": _TIME,
    "idle_in_transaction_session_timeout": _TIME,
    "work_mem": _MEM,
    "temp_file_limit": _MEM,
}
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass
class ResourceGroup:
    target: str
    name: str
    description: str
    connection_limit: int | None  # per member login role; None: no limit
    limits: dict[str, str]  # setting -> value
    members: list[str]
    #: members whose own settings or connection limit differ from the group's (changed by
    #: hand since they joined): member -> what differs
    drift: dict[str, list[str]] = field(default_factory=dict)
    action_id: int | None = None  # the journaled change that made this state, when one did
    outcome: str | None = None  # done / reported (report_only policy: nothing ran)


@dataclass
class GroupMemberUsage:
    role: str
    sessions: int
    by_state: dict[str, int]
    connection_limit: int | None
    idle_in_transaction_s: float
    db_time_s: float | None  # ASH, over the window
    temp_bytes: int | None  # pg_stat_statements, since its last reset


@dataclass
class ResourceGroupStats:
    target: str
    group: str
    since: datetime
    until: datetime
    members: list[GroupMemberUsage]
    sessions: int
    db_time_s: float | None
    temp_bytes: int | None
    notes: list[str]


# ------------------------------------------------------------------------------ input


def _role_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{what} {name!r} is not a role name opscore manages.",
            "Use lower-case letters, digits and _ (a letter or _ first, at most 63).",
        )
    return name


def _limits(values: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        text = str(value).strip()
        ok = _FORMS[key].fullmatch(text) or (key == "temp_file_limit" and text == "-1")
        if not ok:
            raise InvalidInput(
                f"{key} {text!r} is not a value PostgreSQL takes for it.",
                f"Give {GROUP_LIMITS[key]}.",
            )
        out[key] = text
    return out


def _conn_limit(value: int | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or value < -1:
        raise InvalidInput(
            f"connection_limit {value!r} is not a number of connections.",
            "Give 0 or more (-1 = no limit).",
        )
    return value


# ------------------------------------------------------------------------ statements

_I, _L = sql.Identifier, sql.Literal


def _set(role: str, key: str, value: str | None) -> sql.Composable:
    if value is None:
        return sql.SQL("ALTER ROLE {} RESET {}").format(_I(role), _I(key))
    return sql.SQL("ALTER ROLE {} SET {} = {}").format(_I(role), _I(key), _L(value))


def _connlimit(role: str, n: int) -> sql.Composable:
    return sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(_I(role), _L(n))


def _apply_to(role: str, limits: dict[str, str | None], conn_limit: int | None) -> list:
    out = [_set(role, k, v) for k, v in limits.items()]
    if conn_limit is not None:
        out.append(_connlimit(role, conn_limit))
    return out


def _restore(role: str, before: dict[str, Any], keys: list[str], conn: bool) -> list:
    """Statements that put ``keys`` (and the connection limit) of ``role`` back as they were."""
    out = [_set(role, k, before["settings"].get(k)) for k in keys]
    if conn:
        out.append(_connlimit(role, before["connection_limit"]))
    return out


def _group(t: Target, row: dict[str, Any], roles: dict[str, dict[str, Any]]) -> ResourceGroup:
    limits = {k: v for k, v in row["settings"].items() if k in GROUP_LIMITS}
    limit = row["connection_limit"] if row["connection_limit"] >= 0 else None
    drift: dict[str, list[str]] = {}
    for m in row["members"]:
        r = roles.get(m)
        if r is None:
            continue
        diffs = [k for k, v in limits.items() if r["settings"].get(k) != v]
        if limit is not None and r["connection_limit"] != limit:
            diffs.append("connection_limit")
        if diffs:
            drift[m] = diffs
    comment = row["comment"] or ""
    desc = comment[len(reads.GROUP_MARK) :].lstrip(": ").strip()
    return ResourceGroup(t.name, row["name"], desc, limit, limits, list(row["members"]), drift)


def _read(t: Target, name: str | None = None) -> list[ResourceGroup]:
    with target_session(t) as conn:
        rows = reads.groups(conn, name)
        members = sorted({m for r in rows for m in r["members"]})
        roles = reads.roles(conn, members) if members else {}
    return [_group(t, r, roles) for r in rows]


def _one(t: Target, name: str) -> ResourceGroup:
    found = _read(t, _role_name(name, "Resource group"))
    if not found:
        raise InvalidInput(
            f"Target {t.name!r} has no resource group {name!r}.",
            "List them with `opscore resource group list`.",
        )
    return found[0]


def _members_ok(t: Target, group: str, members: list[str]) -> dict[str, dict[str, Any]]:
    """The members' current state; refused when one does not exist, is the group itself, or
    belongs to another opscore group."""
    for m in members:
        _role_name(m, "Member")
    if group in members:
        raise InvalidInput(f"Group {group!r} cannot be its own member.")
    with target_session(t) as conn:
        found = reads.roles(conn, members)
        others = {m for g in reads.groups(conn) if g["name"] != group for m in g["members"]}
    missing = [m for m in members if m not in found]
    if missing:
        raise InvalidInput(
            f"No role {', '.join(map(repr, missing))} on target {t.name!r}.",
            "Create the login role first (opscore manages groups, not users).",
        )
    clash = sorted(set(members) & others)
    if clash:
        raise InvalidInput(
            f"{', '.join(clash)} already belong to another resource group.",
            "Remove them from it first: a role takes the limits of one group.",
        )
    return found


def _perform(t: Target, action: actions.Action) -> actions.ActionResult:
    with repository.session() as repo:
        return actions.perform(repo, t.target_id, target_dsn(t), action)


def _change(
    t: Target,
    what: str,
    statements: list,
    undo: list,
    roles: list[str],
    evidence: dict[str, Any],
    requested_by: str,
) -> actions.ActionResult:
    action = actions.role_statements(
        "resource_group",
        what,
        statements,
        undo=undo,
        why="requested by the user",
        evidence=evidence,
        state_sql=actions.ROLE_STATE,
        state_params=(roles,),
        requested_by=requested_by,
    )
    return _perform(t, action)


def _after(t: Target, name: str, res: actions.ActionResult) -> ResourceGroup:
    found = _read(t, name)
    if found:
        g = found[0]
    else:  # deleted, or not created under report_only
        g = ResourceGroup(t.name, name, "", None, {}, [])
    g.action_id, g.outcome = res.action_id, res.outcome
    return g


# ------------------------------------------------------------------------ operations


def create_resource_group(
    name: str,
    target: str | None = None,
    description: str = "",
    connection_limit: int | None = None,
    statement_timeout: str | None = None,
    idle_in_transaction_session_timeout: str | None = None,
    work_mem: str | None = None,
    temp_file_limit: str | None = None,
    members: list[str] | None = None,
    requested_by: str = "opscore",
) -> ResourceGroup:
    """Create a resource group (a NOLOGIN role) with its limits, and give them to its members
    (GRANT, ALTER ROLE ... SET, CONNECTION LIMIT): one journaled action, all or nothing. The
    limits apply to a member's sessions from its next login."""
    t = resolve_target(target)
    _role_name(name, "Resource group")
    limits = _limits(
        {
            "statement_timeout": statement_timeout,
            "idle_in_transaction_session_timeout": idle_in_transaction_session_timeout,
            "work_mem": work_mem,
            "temp_file_limit": temp_file_limit,
        }
    )
    limit = _conn_limit(connection_limit)
    members = list(dict.fromkeys(members or []))
    with target_session(t) as conn:
        if reads.roles(conn, [name]):
            raise InvalidInput(
                f"A role {name!r} already exists on target {t.name!r}.",
                "Pick another name (opscore creates the group role itself).",
            )
    before = _members_ok(t, name, members) if members else {}
    comment = f"{reads.GROUP_MARK}: {description}".strip().rstrip(":")
    stmts: list = [
        sql.SQL("CREATE ROLE {} NOLOGIN CONNECTION LIMIT {}").format(
            _I(name), _L(-1 if limit is None else limit)
        ),
        sql.SQL("COMMENT ON ROLE {} IS {}").format(_I(name), _L(comment)),
        *(_set(name, k, v) for k, v in limits.items()),
    ]
    undo: list = []
    for m in members:
        stmts.append(sql.SQL("GRANT {} TO {}").format(_I(name), _I(m)))
        stmts += _apply_to(m, dict(limits), limit)
        undo += _restore(m, before[m], list(limits), limit is not None)
    undo.append(sql.SQL("DROP ROLE {}").format(_I(name)))
    res = _change(
        t,
        f"create resource group {name!r}",
        stmts,
        undo,
        [name, *members],
        {"limits": limits, "connection_limit": limit, "members": members},
        requested_by,
    )
    return _after(t, name, res)


def list_resource_groups(target: str | None = None) -> list[ResourceGroup]:
    """The target's resource groups with their limits and members (read from the server)."""
    return _read(resolve_target(target))


def get_resource_group(name: str, target: str | None = None) -> ResourceGroup:
    """One resource group; ``drift`` names members whose limits were changed by hand."""
    return _one(resolve_target(target), name)


def update_resource_group(
    name: str,
    target: str | None = None,
    connection_limit: int | None = None,
    statement_timeout: str | None = None,
    idle_in_transaction_session_timeout: str | None = None,
    work_mem: str | None = None,
    temp_file_limit: str | None = None,
    clear: list[str] | None = None,
    add_members: list[str] | None = None,
    remove_members: list[str] | None = None,
    requested_by: str = "opscore",
) -> ResourceGroup:
    """Change a group's limits (given ones set, ``clear`` ones removed), add and remove
    members; every member gets the group's limits (a removed member gets them reset). One
    journaled action with the way back."""
    t = resolve_target(target)
    g = _one(t, name)
    changed: dict[str, str | None] = dict(
        _limits(
            {
                "statement_timeout": statement_timeout,
                "idle_in_transaction_session_timeout": idle_in_transaction_session_timeout,
                "work_mem": work_mem,
                "temp_file_limit": temp_file_limit,
            }
        )
    )
    for key in clear or []:
        if key not in GROUP_LIMITS and key != "connection_limit":
            raise InvalidInput(
                f"{key!r} is not a limit of a resource group.",
                "Clear one of: connection_limit, " + ", ".join(GROUP_LIMITS) + ".",
            )
        if key in GROUP_LIMITS:
            changed[key] = None
    limit = _conn_limit(connection_limit)
    if clear and "connection_limit" in clear:
        limit = -1
    add = [m for m in dict.fromkeys(add_members or []) if m not in g.members]
    remove = list(dict.fromkeys(remove_members or []))
    not_in = [m for m in remove if m not in g.members]
    if not_in:
        raise InvalidInput(
            f"{', '.join(not_in)} {'is' if len(not_in) == 1 else 'are'} not a member of {name!r}.",
            "See the members with `opscore resource group show`.",
        )
    if not changed and limit is None and not add and not remove:
        raise InvalidInput(
            f"Nothing to change in resource group {name!r}.",
            "Give a limit, --clear, --add-member or --remove-member.",
        )
    before = _members_ok(t, name, add) if add else {}
    keep = [m for m in g.members if m not in remove]
    with target_session(t) as conn:
        before |= reads.roles(conn, [name, *g.members])
    new_limits = {**g.limits, **changed}
    new_limits = {k: v for k, v in new_limits.items() if v is not None}
    new_conn = g.connection_limit if limit is None else (None if limit < 0 else limit)
    stmts: list = [_set(name, k, v) for k, v in changed.items()]
    undo: list = _restore(name, before[name], list(changed), limit is not None)
    if limit is not None:
        stmts.append(_connlimit(name, limit))
    member_conn = None if limit is None else limit
    for m in keep:  # the changed limits
        stmts += _apply_to(m, dict(changed), member_conn)
        undo += _restore(m, before[m], list(changed), member_conn is not None)
    for m in add:  # every limit of the group
        stmts.append(sql.SQL("GRANT {} TO {}").format(_I(name), _I(m)))
        stmts += _apply_to(m, dict(new_limits), new_conn)
        undo += [sql.SQL("REVOKE {} FROM {}").format(_I(name), _I(m))]
        undo += _restore(m, before[m], list(new_limits), new_conn is not None)
    for m in remove:  # the group's limits taken off
        gone = {k: None for k in g.limits}
        stmts += _apply_to(m, gone, -1 if g.connection_limit is not None else None)
        stmts.append(sql.SQL("REVOKE {} FROM {}").format(_I(name), _I(m)))
        undo += [sql.SQL("GRANT {} TO {}").format(_I(name), _I(m))]
        undo += _restore(m, before[m], list(g.limits), g.connection_limit is not None)
    res = _change(
        t,
        f"update resource group {name!r}",
        stmts,
        undo,
        [name, *g.members, *add],
        {"changed": changed, "connection_limit": limit, "add": add, "remove": remove},
        requested_by,
    )
    return _after(t, name, res)


def delete_resource_group(
    name: str, target: str | None = None, requested_by: str = "opscore"
) -> ResourceGroup:
    """Take the group's limits off its members (settings reset, connection limit removed),
    revoke the membership and drop the group role: one journaled action with the way back.
    Returns the group as it was."""
    t = resolve_target(target)
    g = _one(t, name)
    with target_session(t) as conn:
        before = reads.roles(conn, [name, *g.members])
    stmts: list = []
    undo: list = [
        sql.SQL("CREATE ROLE {} NOLOGIN CONNECTION LIMIT {}").format(
            _I(name), _L(before[name]["connection_limit"])
        ),
        sql.SQL("COMMENT ON ROLE {} IS {}").format(_I(name), _L(before[name]["comment"])),
        *(_set(name, k, v) for k, v in g.limits.items()),
    ]
    for m in g.members:
        gone = {k: None for k in g.limits}
        stmts += _apply_to(m, gone, -1 if g.connection_limit is not None else None)
        stmts.append(sql.SQL("REVOKE {} FROM {}").format(_I(name), _I(m)))
        undo.append(sql.SQL("GRANT {} TO {}").format(_I(name), _I(m)))
        undo += _restore(m, before[m], list(g.limits), g.connection_limit is not None)
    stmts.append(sql.SQL("DROP ROLE {}").format(_I(name)))
    res = _change(
        t,
        f"delete resource group {name!r}",
        stmts,
        undo,
        [name, *g.members],
        {"group": {"limits": g.limits, "members": g.members}},
        requested_by,
    )
    g.action_id, g.outcome = res.action_id, res.outcome
    return g


def resource_group_stats(
    name: str, target: str | None = None, since: str = "1h"
) -> ResourceGroupStats:
    """Usage of a group's members: sessions now by state against the connection limit, the
    longest idle-in-transaction time, DB time over ``since`` from ASH (the repository's
    samples), temp bytes written from pg_stat_statements (since its last reset)."""
    t = resolve_target(target)
    g = _one(t, name)
    seconds = parse_duration(since, "since")
    until = datetime.now(UTC)
    begin = until - timedelta(seconds=seconds)
    notes: list[str] = []
    members = g.members
    by_role: dict[str, dict[str, int]] = {m: {} for m in members}
    idle: dict[str, float] = dict.fromkeys(members, 0.0)
    temp: dict[str, int] | None = None
    with target_session(t) as conn:
        if members:
            for r in reads.connections(conn, members):
                by_role[r["role"]][r["state"]] = int(r["sessions"])
                idle[r["role"]] = max(idle[r["role"]], float(r["idle_in_xact_s"]))
            if reads.pgss_available(conn):
                temp = {m: 0 for m in members}
                for r in reads.temp_by_role(conn, members):
                    temp[r["role"]] = int(r["temp_bytes"] or 0)
            else:
                notes.append(
                    "temp bytes per role need pg_stat_statements in the target's database "
                    "(not installed): not available"
                )
    db_time: dict[str, float] | None = None
    if members:
        try:
            df = ash_db_time(t.name, begin, until, ["usename"])
        except OpsCoreError as exc:
            notes.append(f"DB time not available: {exc.message}")
        else:
            db_time = {m: 0.0 for m in members}
            for _, row in df.iterrows():
                if row["usename"] in db_time:
                    db_time[row["usename"]] = float(row["db_time_s"])
            if df.empty:
                notes.append("no ASH samples in the window (is the sampler running?)")
    if g.connection_limit is not None:
        notes.append(
            f"connection limit {g.connection_limit} applies to each member role; PostgreSQL "
            "cannot limit the group's total"
        )
    usage = [
        GroupMemberUsage(
            role=m,
            sessions=sum(by_role[m].values()),
            by_state=by_role[m],
            connection_limit=g.connection_limit,
            idle_in_transaction_s=round(idle[m], 3),
            db_time_s=None if db_time is None else round(db_time[m], 3),
            temp_bytes=None if temp is None else temp[m],
        )
        for m in members
    ]
    return ResourceGroupStats(
        target=t.name,
        group=name,
        since=begin,
        until=until,
        members=usage,
        sessions=sum(u.sessions for u in usage),
        db_time_s=None if db_time is None else round(sum(db_time.values()), 3),
        temp_bytes=None if temp is None else sum(temp.values()),
        notes=notes,
    )
