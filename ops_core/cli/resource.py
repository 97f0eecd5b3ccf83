"""`opscore resource`: resource groups (group roles with limits given to their members) and
quotas (sizes and connections, measured, alerted, optionally enforced)."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(help="Resource groups, quotas and resource statistics of a target.")
group_app = typer.Typer(help="Resource groups: a group role whose limits its members get.")
quota_app = typer.Typer(help="Quotas: size and connection limits, measured by the quotas flow.")
app.add_typer(group_app, name="group")
app.add_typer(quota_app, name="quota")

TargetOpt = typer.Option(None, "--target", "-t", help="Target name (default: the only one).")
ConnOpt = typer.Option(None, "--connection-limit", help="Connections per member role (-1: none).")
StmtOpt = typer.Option(None, "--statement-timeout", help="e.g. 30s, 5min (0: none).")
IdleOpt = typer.Option(None, "--idle-timeout", help="idle_in_transaction_session_timeout.")
WorkOpt = typer.Option(None, "--work-mem", help="e.g. 16MB.")
TempOpt = typer.Option(None, "--temp-file-limit", help="e.g. 1GB (-1: none).")


def _limits(g) -> str:
    parts = [f"{k}={v}" for k, v in g.limits.items()]
    if g.connection_limit is not None:
        parts.insert(0, f"connections={g.connection_limit}")
    return ", ".join(parts) or "-"


def _print_group(g) -> None:
    if g.outcome == "reported":
        console.print(
            f"[yellow]report only[/]: the resource_group policy of this target journaled the "
            f"change as action {g.action_id}; nothing ran."
        )
        return
    console.print(f"Resource group {g.name!r} on {g.target}: {_limits(g)}")
    console.print(f"  members: {', '.join(g.members) or '(none)'}")
    for m, what in g.drift.items():
        console.print(f"  [yellow]{m} differs from the group: {', '.join(what)}[/]")
    if g.action_id:
        console.print(f"  journaled as action {g.action_id} ({g.outcome})")


@group_app.command(
    "create",
    epilog=example(
        "opscore resource group create reporting --statement-timeout 30s --work-mem 64MB "
        "--connection-limit 5 --member alice --member bob"
    ),
)
def group_create(
    name: str,
    target: str | None = TargetOpt,
    description: str | None = typer.Option(None, "--description"),
    connection_limit: int | None = ConnOpt,
    statement_timeout: str | None = StmtOpt,
    idle_timeout: str | None = IdleOpt,
    work_mem: str | None = WorkOpt,
    temp_file_limit: str | None = TempOpt,
    member: list[str] = typer.Option(None, "--member", help="A login role (repeatable)."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a group role with limits and give them to its members (journaled action)."""
    g = api.create_resource_group(
        name, target=target, description=description or "", connection_limit=connection_limit,
        statement_timeout=statement_timeout, idle_in_transaction_session_timeout=idle_timeout,
        work_mem=work_mem, temp_file_limit=temp_file_limit, members=member or [],
    )  # fmt: skip
    print_json(g) if as_json else _print_group(g)


@group_app.command("list", epilog=example("opscore resource group list -t prod --json"))
def group_list(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Resource groups with their limits and members."""
    groups = api.list_resource_groups(target)
    if as_json:
        print_json(groups)
        return
    console.print(
        table(
            None,
            ["group", "limits", "members", "drift", "description"],
            [
                [g.name, _limits(g), ", ".join(g.members), ", ".join(g.drift), g.description]
                for g in groups
            ],
        )
    )


@group_app.command("show", epilog=example("opscore resource group show reporting"))
def group_show(name: str, target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """One resource group (members whose limits were changed by hand show as drift)."""
    g = api.get_resource_group(name, target)
    print_json(g) if as_json else _print_group(g)


@group_app.command(
    "update",
    epilog=example(
        "opscore resource group update reporting --statement-timeout 1min --add-member carol",
        "opscore resource group update reporting --clear work_mem --remove-member bob",
    ),
)
def group_update(
    name: str,
    target: str | None = TargetOpt,
    connection_limit: int | None = ConnOpt,
    statement_timeout: str | None = StmtOpt,
    idle_timeout: str | None = IdleOpt,
    work_mem: str | None = WorkOpt,
    temp_file_limit: str | None = TempOpt,
    clear: list[str] = typer.Option(None, "--clear", help="A limit to remove (repeatable)."),
    add_member: list[str] = typer.Option(None, "--add-member"),
    remove_member: list[str] = typer.Option(None, "--remove-member"),
    as_json: bool = JsonOpt,
) -> None:
    """Change limits and members (every member gets the group's limits; journaled)."""
    g = api.update_resource_group(
        name, target=target, connection_limit=connection_limit,
        statement_timeout=statement_timeout, idle_in_transaction_session_timeout=idle_timeout,
        work_mem=work_mem, temp_file_limit=temp_file_limit, clear=clear or [],
        add_members=add_member or [], remove_members=remove_member or [],
    )  # fmt: skip
    print_json(g) if as_json else _print_group(g)


@group_app.command("delete", epilog=example("opscore resource group delete reporting"))
def group_delete(name: str, target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Take the limits off the members, revoke them and drop the group role (journaled)."""
    g = api.delete_resource_group(name, target)
    if as_json:
        print_json(g)
    elif g.outcome == "reported":
        _print_group(g)
    else:
        console.print(f"Resource group {name!r} deleted (action {g.action_id}).")


@group_app.command("stats", epilog=example("opscore resource group stats reporting --since 1h"))
def group_stats(
    name: str,
    target: str | None = TargetOpt,
    since: str = typer.Option("1h", "--since", help="ASH window (30m, 2h)."),
    as_json: bool = JsonOpt,
) -> None:
    """Per member: sessions now by state, idle-in-transaction, DB time (ASH), temp bytes."""
    s = api.resource_group_stats(name, target, since=since)
    if as_json:
        print_json(s)
        return
    na = "n/a"
    dbt = na if s.db_time_s is None else s.db_time_s
    console.print(
        table(
            f"{s.group}: {s.sessions} sessions, DB time {dbt} s",
            ["member", "sessions", "by state", "idle in xact s", "DB time s", "temp bytes"],
            [
                [
                    u.role,
                    u.sessions,
                    ", ".join(f"{k} {v}" for k, v in u.by_state.items()),
                    u.idle_in_transaction_s,
                    na if u.db_time_s is None else u.db_time_s,
                    na if u.temp_bytes is None else u.temp_bytes,
                ]
                for u in s.members
            ],
        )
    )
    for n in s.notes:
        console.print(f"[dim]{n}[/]")


# ----------------------------------------------------------------------------- quotas


def _quota_rows(quotas) -> list[list]:
    def lim(v, metric):
        return "-" if v is None else (f"{v:,.0f} B" if metric == "size_bytes" else f"{v:g}")

    return [
        [
            q.name,
            q.target,
            f"{q.scope} {q.object}",
            q.metric,
            lim(q.measured, q.metric) if q.measured is not None else "-",
            lim(q.soft_limit, q.metric),
            lim(q.hard_limit, q.metric),
            q.status,
            ("enforced" if q.enforced else "on") if q.enforce else "no",
        ]
        for q in quotas
    ]


_QCOLS = ["quota", "target", "on", "metric", "measured", "soft", "hard", "status", "enforce"]


@quota_app.command(
    "set",
    epilog=example(
        "opscore resource quota set appdb-size --scope database --object appdb "
        "--metric size_bytes --soft 80GB --hard 100GB",
        "opscore resource quota set batch-conns --scope role --object batch "
        "--metric connections --soft 40 --hard 50 --enforce",
    ),
)
def quota_set(
    name: str,
    scope: str = typer.Option(..., "--scope", help="database, schema, tablespace or role."),
    obj: str = typer.Option(..., "--object", help="Its name (a schema of the target's DB)."),
    metric: str = typer.Option(..., "--metric", help="size_bytes or connections."),
    soft: str | None = typer.Option(None, "--soft", help="Warn at (500MB, 40)."),
    hard: str | None = typer.Option(None, "--hard", help="Breach at (1GB, 50)."),
    enforce: bool = typer.Option(False, "--enforce", help="Act at the hard limit (journaled)."),
    target: str | None = TargetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Create or change a quota (measured by `opscore resource quota evaluate` / the flow)."""
    q = api.set_quota(name, scope, obj, metric, soft, hard, enforce=enforce, target=target)
    if as_json:
        print_json(q)
        return
    console.print(f"Quota {q.name!r} set: {q.scope} {q.object} {q.metric}.")
    if q.enforce:
        console.print(f"  at the hard limit: {q.enforcement}")


@quota_app.command("list", epilog=example("opscore resource quota list --json"))
def quota_list(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Quotas with their latest evaluation."""
    qs = api.list_quotas(target)
    if as_json:
        print_json(qs)
        return
    console.print(table(None, _QCOLS, _quota_rows(qs)))


@quota_app.command("show", epilog=example("opscore resource quota show batch-conns"))
def quota_show(name: str, target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """One quota and its events (breaches, enforcement, reversal)."""
    q = api.get_quota(name, target)
    if as_json:
        print_json(q)
        return
    console.print(table(None, _QCOLS, _quota_rows([q])))
    if q.reason:
        console.print(f"  {q.reason}")
    console.print(
        table(
            "events",
            ["at", "event", "measured", "action", "message"],
            [[e["at"], e["event"], e["measured"], e["action_id"], e["message"]] for e in q.events],
        )
    )


@quota_app.command("delete", epilog=example("opscore resource quota delete batch-conns"))
def quota_delete(name: str, target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Delete a quota (an enforcement in force is reverted first)."""
    q = api.delete_quota(name, target)
    print_json(q) if as_json else console.print(f"Quota {name!r} deleted.")


@quota_app.command("evaluate", epilog=example("opscore resource quota evaluate -t prod"))
def quota_evaluate(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Measure every quota now, enforce/revert as allowed (what the quotas flow runs)."""
    run = api.evaluate_quotas(target)
    if as_json:
        print_json(run)
        return
    console.print(
        table(
            f"{run.quotas} quotas, {run.breaches} over a limit, {run.enforced} enforced, "
            f"{run.reverted} reverted",
            ["target", "quota", "status", "measured", "message"],
            [[r.target, r.quota, r.status, r.measured, r.message] for r in run.results],
        )
    )


@app.command(
    "pools", epilog=example("opscore resource pools -t prod", "opscore resource pools --json")
)
def pools(
    target: str | None = TargetOpt,
    pgbouncer: str | None = typer.Option(
        None,
        "--set-pgbouncer",
        help="Admin console DSN of the PgBouncer in front (dbname=pgbouncer).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Connection pools: PgBouncer SHOW POOLS when configured; the server's connections by
    database, user, application and state against max_connections."""
    if pgbouncer is not None:
        api.set_target_pooler(target or api.resolve_target(None).name, pgbouncer)
    p = api.connection_pools(target)
    if as_json:
        print_json(p)
        return
    console.print(
        f"{p.client_connections} client connections of max_connections {p.max_connections} "
        f"({p.superuser_reserved} reserved for superusers). {p.note}"
    )
    cols = ["database", "user", "application_name", "state", "connections"]
    console.print(table("server connections", cols, p.connections[cols].values.tolist()))
    if len(p.pools):
        pcols = [c for c in ("database", "user", "cl_active", "cl_waiting", "sv_active",
                             "sv_idle", "maxwait", "pool_mode") if c in p.pools]  # fmt: skip
        console.print(table("PgBouncer pools", pcols, p.pools[pcols].values.tolist()))


@app.command(
    "stats", epilog=example("opscore resource stats -t prod", "opscore resource stats --json")
)
def stats(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """CPU, memory, buffer pool, I/O and connections of a target (host figures when local)."""
    s = api.resource_stats(target)
    if as_json:
        print_json(s)
        return
    c, m, conn = s.cpu, s.memory, s.connections
    na = "n/a"
    console.print(
        f"CPU: host {c.host_cpu_pct if c.host_cpu_pct is not None else na} %, DB time on CPU "
        f"{c.db_cpu_s if c.db_cpu_s is not None else na} s of {c.db_time_s or 0} s (last hour)"
    )
    console.print(
        f"Connections: {conn.client_connections} of {conn.max_connections} "
        f"({conn.used_pct} % of the usable); by state {conn.by_state}"
    )
    bp = m.buffer_pool
    console.print(
        f"Buffer pool: {bp.used} of {bp.buffers} buffers used, {bp.dirty} dirty"
        if bp.available
        else f"Buffer pool: {bp.reason}"
    )
    console.print(
        table("memory settings", ["name", "value"], m.settings[["name", "value"]].values.tolist())
    )
    io = s.io.by_database
    console.print(
        table("I/O per database", ["database", "blks_read", "hit_pct", "temp_bytes"],
              io[["database", "blks_read", "hit_pct", "temp_bytes"]].values.tolist())
    )  # fmt: skip
    for n in c.notes + m.notes + s.io.notes:
        console.print(f"[dim]{n}[/]")


@app.command("allocations", epilog=example("opscore resource allocations --json"))
def allocations(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """What each role may use: connection limit, role settings, groups, sessions now."""
    df = api.resource_allocations(target)
    if as_json:
        print_json(df)
        return
    console.print(
        table(None, ["role", "login", "connections", "settings", "member of", "sessions"],
              [[r["role"], "yes" if r["can_login"] else "no", r["connection_limit"],
                ", ".join(f"{k}={v}" for k, v in r["settings"].items()),
                ", ".join(r["member_of"]), r["sessions"]] for _, r in df.iterrows()])
    )  # fmt: skip
