"""`opscore sql ...`: SQL Monitor, SQL Tuning Advisor tasks, SQL profiles, plan cache and
misestimates (thin over ops_core.api)."""

from __future__ import annotations

import time

import typer
from rich.markup import escape

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(
    help="SQL Monitor, SQL Tuning Advisor, SQL profiles, plan cache.", no_args_is_help=True
)
tune = typer.Typer(help="SQL Tuning Advisor tasks.", no_args_is_help=True)
profile = typer.Typer(help="SQL profiles: verified planner settings per statement.")
app.add_typer(tune, name="tune")
app.add_typer(profile, name="profile")


def register(root: typer.Typer) -> None:
    """`opscore sql ...`, and `opscore tune ...` / `opscore profile ...` as the issue names
    them (the same commands)."""
    root.add_typer(app, name="sql")
    root.add_typer(tune, name="tune")
    root.add_typer(profile, name="profile")


TargetOpt = typer.Option(
    None, "--target", "-t", help="Target name (default: the only target, or 'demo')."
)


def _target(name: str | None) -> str:
    return api.resolve_target(name).name


def _short(text: str | None, n: int = 70) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= n else t[: n - 1] + "…"


def _exec_rows(rows: list[api.SqlExecution]) -> list[tuple]:
    out = []
    for e in rows:
        prog = e.progress or {}
        pct = prog.get("pct")
        progress = (
            f"{prog.get('command')} {prog.get('phase')} {'' if pct is None else f'{pct:.0f} %'}"
            if prog
            else ""
        )
        chain = " <- ".join(str(p) for p in e.blocking_chain)
        wait = e.wait_class or ""
        if e.wait_event:
            wait += f" {e.wait_event}"
        out.append(
            (
                e.exec_id or "",
                e.pid,
                e.status,
                f"{e.elapsed_s:.1f}",
                e.usename or "",
                e.application_name or "",
                wait,
                chain,
                progress,
                _short(e.query),
            )
        )
    return out


_EXEC_COLS = ["id", "pid", "status", "elapsed s", "user", "app", "wait", "blocked by", "progress",
              "sql"]  # fmt: skip


@app.command(
    epilog=example(
        "opscore sql monitor --target prod",
        "opscore sql monitor --min 1 --watch 5",
        "opscore sql monitor --history --since 2026-12-05T03:00 --json",
    )
)
def monitor(
    target: str | None = TargetOpt,
    min_elapsed: float | None = typer.Option(
        None, "--min", help="Seconds an execution has run (default the setting, 5)."
    ),
    history: bool = typer.Option(False, "--history", help="Kept executions, longest first."),
    since: str | None = typer.Option(None, "--since", help="History from (ISO 8601, UTC)."),
    until: str | None = typer.Option(None, "--until", help="History until (ISO 8601, UTC)."),
    watch: float | None = typer.Option(None, "--watch", help="Refresh every N seconds."),
    as_json: bool = JsonOpt,
) -> None:
    """Executions running now for at least --min seconds (recorded in the repository), or the
    executions kept there (--history)."""
    name = _target(target)
    while True:
        if history:
            rows = api.list_sql_executions(
                name, begin=since, end=until, min_elapsed_s=min_elapsed or 0.0
            )
        else:
            rows = api.sql_monitor(name, min_elapsed_s=min_elapsed)
        if as_json:
            print_json([e.as_dict() for e in rows])
        else:
            title = f"SQL Monitor {name}: " + ("kept executions" if history else "running now")
            console.print(table(title, _EXEC_COLS, _exec_rows(rows), {"elapsed s": "right"}))
        if not watch:
            return
        time.sleep(watch)


@app.command(epilog=example("opscore sql show 12", "opscore sql show 12 --json"))
def show(exec_id: int = typer.Argument(..., help="Execution id."), as_json: bool = JsonOpt):
    """One execution: figures, ASH wait timeline, time by wait event, plan."""
    d = api.sql_execution(exec_id)
    if as_json:
        print_json(d.as_dict())
        return
    e = d.execution
    console.print(
        f"[bold]Execution {e.exec_id}[/] pid {e.pid} on {e.target}: {e.status}, "
        f"{e.elapsed_s:.1f} s elapsed, DB time {e.db_time_s:.1f} s, {e.samples} ASH samples"
    )
    console.print(escape(e.query or ""), highlight=False)
    if d.waits_by_event:
        rows = [(w["wait_class"], w["event"], f"{w['seconds']:.2f}") for w in d.waits_by_event]
        console.print(table("Time by wait event", ["class", "event", "s"], rows, {"s": "right"}))
    if d.note:
        console.print(f"[dim]{d.note}[/]")
    _print_plan(d.plan)


def _print_plan(p: api.ExecutionPlan | None) -> None:
    if p is None:
        return
    if p.plan:
        console.print(f"[bold]Plan[/] ({p.method}):")
        console.print(escape(p.plan), highlight=False)
    else:
        console.print(f"[yellow]No plan:[/] {escape(p.reason or '')}")
    if p.actual_plan:
        console.print(
            f"[bold]Actual plan[/] (auto_explain in the server log, "
            f"{p.actual_plan_duration_ms:.0f} ms):"
        )
        console.print(escape(p.actual_plan), highlight=False)
    elif p.actual_plan_reason:
        console.print(f"[dim]No actual plan: {escape(p.actual_plan_reason)}[/]")


@app.command(epilog=example("opscore sql plan 12"))
def plan(exec_id: int = typer.Argument(..., help="Execution id."), as_json: bool = JsonOpt):
    """The plan of a monitored execution's statement (EXPLAIN, never ANALYZE), or why none."""
    p = api.sql_execution_plan(exec_id)
    if as_json:
        print_json(p.as_dict())
    else:
        _print_plan(p)


@app.command(epilog=example("opscore sql stats --target prod --since 2026-12-05"))
def stats(
    target: str | None = TargetOpt,
    since: str | None = typer.Option(None, "--since", help="From (default: a day ago)."),
    until: str | None = typer.Option(None, "--until", help="Until (default: now)."),
    as_json: bool = JsonOpt,
) -> None:
    """Kept executions: counts by duration, time by wait class, the longest."""
    s = api.sql_monitor_statistics(_target(target), since, until)
    if as_json:
        print_json(s.as_dict())
        return
    console.print(
        f"{s.totals.get('executions', 0)} executions, {s.totals.get('running', 0)} running"
    )
    console.print(
        table("By duration", ["bucket", "executions", "elapsed s"],
              [(b["bucket"], b["executions"], f"{b['elapsed_s']:.1f}") for b in s.by_duration])
    )  # fmt: skip
    console.print(
        table("By wait class", ["class", "s"],
              [(w["wait_class"], f"{w['seconds']:.1f}") for w in s.by_wait_class])
    )  # fmt: skip
    console.print(table("Longest", _EXEC_COLS, _exec_rows(s.top)))


@app.command(epilog=example("opscore sql capture --target prod"))
def capture(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Keep the executions ASH sampled since the last capture (over the threshold)."""
    n = api.capture_sql_monitor(_target(target))
    print_json({"written": n}) if as_json else console.print(f"{n} executions kept or updated")


@app.command(epilog=example("opscore sql purge --keep-days 8"))
def purge(
    target: str | None = TargetOpt,
    keep_days: int | None = typer.Option(None, "--keep-days", help="Default: the setting."),
    as_json: bool = JsonOpt,
) -> None:
    """Delete finished executions older than the retention."""
    n = api.purge_sql_monitor(target, keep_days=keep_days)
    print_json({"deleted": n}) if as_json else console.print(f"{n} executions deleted")


@app.command("plan-cache", epilog=example("opscore sql plan-cache --entries"))
def plan_cache(
    target: str | None = TargetOpt,
    entries: bool = typer.Option(False, "--entries", help="Statements by planning time."),
    as_json: bool = JsonOpt,
) -> None:
    """Planning vs execution (pg_stat_statements planning counters, the last two snapshots)."""
    name = _target(target)
    if entries:
        df = api.plan_cache_entries(name)
        if as_json:
            print_json(df.to_dict("records"))
            return
        rows = [
            (r.queryid, r.plans, r.calls, f"{r.mean_plan_ms or 0:.2f}",
             f"{r.mean_exec_ms or 0:.2f}", _short(r.query, 60))
            for r in df.itertuples()
        ]  # fmt: skip
        cols = ["queryid", "plans", "calls", "plan ms", "exec ms", "sql"]
        console.print(table("Statements by planning time", cols, rows))
        return
    s = api.plan_cache_statistics(name)
    print_json(s) if as_json else console.print(s)


@app.command(epilog=example("opscore sql misestimates --suggest"))
def misestimates(
    target: str | None = TargetOpt,
    suggest: bool = typer.Option(False, "--suggest", help="What to do per table."),
    as_json: bool = JsonOpt,
) -> None:
    """Estimate-vs-actual misestimates seen by tuning runs (10x or more)."""
    name = _target(target)
    data = (
        api.adaptive_suggestions(name)
        if suggest
        else api.adaptive_statistics(name).to_dict("records")
    )
    if as_json:
        print_json(data)
        return
    for row in data:
        console.print(row)


@app.command(
    epilog=example(
        "opscore sql queries --target prod --limit 20",
        "opscore sql queries --queryid 4242 --json",
        "opscore sql queries --begin 10 --end 12 --order-by mean_ms --no-plan",
    )
)
def queries(
    target: str | None = TargetOpt,
    begin: int | None = typer.Option(None, "--begin", help="First snapshot id."),
    end: int | None = typer.Option(None, "--end", help="Last snapshot id."),
    queryid: int | None = typer.Option(None, "--queryid", help="One statement."),
    limit: int = typer.Option(20, "--limit", "-n", help="How many statements."),
    order_by: str = typer.Option("total_ms", "--order-by", help="total_ms, mean_ms, calls..."),
    plan: bool = typer.Option(True, "--plan/--no-plan", help="Plan each statement."),
    as_json: bool = JsonOpt,
) -> None:
    """Query profiles: per statement its pg_stat_statements deltas, ASH waits and plan (or
    why there is none), over a snapshot range (default the last two snapshots)."""
    res = api.query_profiles(
        _target(target), begin, end, queryid=queryid, limit=limit, order_by=order_by,
        with_plan=plan,
    )  # fmt: skip
    if as_json:
        print_json(res.as_dict())
        return
    rows = [
        (
            p.queryid, p.calls, f"{p.total_ms:.1f}", f"{p.mean_ms or 0:.2f}", f"{p.db_time_s:.1f}",
            ", ".join(f"{w.wait_class}/{w.event or '-'} {w.pct or 0:.0f}%" for w in p.waits[:2]),
            p.plan_method or _short(p.plan_reason, 40), _short(p.query, 50),
        )
        for p in res.profiles
    ]  # fmt: skip
    cols = ["queryid", "calls", "total ms", "mean ms", "DB time s", "top waits", "plan", "sql"]
    title = f"Query profiles of {res.target}, snapshots {res.begin_id}-{res.end_id}"
    console.print(table(title, cols, rows))
    if res.note:
        console.print(escape(res.note))
    if queryid is not None and res.profiles:
        p = res.profiles[0]
        console.print(escape(p.plan or f"No plan: {p.plan_reason}"))


# ------------------------------------------------------------------------------ tune
@tune.command(
    "create",
    epilog=example(
        'opscore sql tune create "SELECT * FROM orders WHERE customer = 42" --json',
        "opscore sql tune create --queryid 123456789",
        "opscore sql tune create --top 10 --clone shop_20261205170000",
    ),
)
def tune_create(
    sql_text: str | None = typer.Argument(None, help="The SQL statement."),
    target: str | None = TargetOpt,
    queryid: int | None = typer.Option(None, "--queryid", help="A stored statement."),
    top: int | None = typer.Option(None, "--top", help="The top N by total time."),
    database: str | None = typer.Option(None, "--database", "-d", help="Database of the SQL."),
    clone: str | None = typer.Option(None, "--clone", help="Clone to build indexes on."),
    name: str | None = typer.Option(None, "--name", help="A name for the task."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a tuning task (one of: SQL text, --queryid, --top)."""
    t = api.create_tuning_task(
        _target(target), sql_text, queryid=queryid, top=top, database=database, clone=clone,
        name=name,
    )  # fmt: skip
    if as_json:
        print_json(t.as_dict())
    else:
        console.print(f"[green]✓[/] tuning task {t.task_id}: {len(t.statements)} statement(s)")


@tune.command("run", epilog=example("opscore sql tune run 3 --runs 5"))
def tune_run(
    task_id: int = typer.Argument(..., help="Task id."),
    runs: int = typer.Option(3, "--runs", help="Executions per variant (median)."),
    explain_only: bool = typer.Option(False, "--explain-only", help="Execute nothing."),
    as_json: bool = JsonOpt,
) -> None:
    """Execute a task: analyse and measure each statement."""
    t = api.execute_tuning_task(
        task_id, runs=runs, execute=not explain_only,
        progress=None if as_json else lambda m: console.print(f"[dim]{m}[/]"),
    )  # fmt: skip
    if as_json:
        print_json(t.as_dict())
    else:
        console.print(f"task {t.task_id}: {t.status}, {t.recommendations} recommendation(s)")


def _speed(r: api.TuningRecommendation) -> str:
    if r.measured_speedup is None:
        return "not measured"
    return f"{r.measured_speedup}x ({r.before_ms:.1f} -> {r.after_ms:.1f} ms)"


@tune.command("recommendations", epilog=example("opscore sql tune recommendations 3 --json"))
def tune_recommendations(
    task_id: int = typer.Argument(..., help="Task id."), as_json: bool = JsonOpt
) -> None:
    """Recommendations with rationale, method and measured speed-up (or why not)."""
    recs = api.tuning_recommendations(task_id)
    if as_json:
        print_json([r.as_dict() for r in recs])
        return
    for r in recs:
        console.print(
            f"[bold]#{r.rec_id} {r.type}[/] (statement {r.seq}, method {r.method or '-'}): "
            f"{_speed(r)}"
        )
        console.print(f"  {escape(r.rationale)}", highlight=False)
        if r.sql:
            console.print(f"  [cyan]{escape(r.sql)}[/]", highlight=False)
        if r.why_not:
            console.print(f"  [dim]why not measured: {escape(r.why_not)}[/]", highlight=False)


@tune.command("show", epilog=example("opscore sql tune show 3"))
def tune_show(task_id: int = typer.Argument(..., help="Task id."), as_json: bool = JsonOpt):
    """A task's status, progress and statements."""
    t = api.get_tuning_task(task_id)
    if as_json:
        print_json(t.as_dict())
        return
    console.print(f"task {t.task_id} on {t.target}: {t.status} ({t.progress or ''})")
    for s in t.statements:
        f = s.get("findings") or {}
        console.print(f"  {s['seq']}. {escape(_short(s['sql'], 90))}", highlight=False)
        if f.get("why_not_executed"):
            console.print(f"     [dim]not executed: {escape(f['why_not_executed'])}[/]")


@tune.command("list", epilog=example("opscore sql tune list --json"))
def tune_list(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Tuning tasks, newest first."""
    ts = api.list_tuning_tasks(target)
    if as_json:
        print_json([t.as_dict() for t in ts])
        return
    rows = [(t.task_id, t.target, t.status, len(t.statements), t.recommendations) for t in ts]
    console.print(table("Tuning tasks", ["id", "target", "status", "statements", "recs"], rows))


@tune.command("accept", epilog=example("opscore sql tune accept 17"))
def tune_accept(
    rec_id: int = typer.Argument(..., help="Recommendation id."), as_json: bool = JsonOpt
):
    """Act on a recommendation through the target's action policy (or make a profile)."""
    r = api.accept_recommendation(rec_id, requested_by="cli")
    print_json(r.as_dict()) if as_json else console.print(r.as_dict())


@tune.command("delete", epilog=example("opscore sql tune delete 3"))
def tune_delete(task_id: int = typer.Argument(..., help="Task id."), as_json: bool = JsonOpt):
    """Delete a task with its recommendations."""
    t = api.delete_tuning_task(task_id)
    print_json(t.as_dict()) if as_json else console.print(f"task {t.task_id} deleted")


# ---------------------------------------------------------------------------- profile
@profile.command("create", epilog=example("opscore sql profile create 17"))
def profile_create(
    rec_id: int = typer.Argument(..., help="A setting recommendation id."),
    name: str | None = typer.Option(None, "--name"),
    as_json: bool = JsonOpt,
) -> None:
    """A profile from a measured setting recommendation."""
    p = api.create_sql_profile(rec_id, name=name)
    print_json(p.as_dict()) if as_json else console.print(f"profile {p.profile_id} {p.name}")


@profile.command("list", epilog=example("opscore sql profile list"))
def profile_list(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Profiles with their evidence."""
    ps = api.list_sql_profiles(target)
    if as_json:
        print_json([p.as_dict() for p in ps])
        return
    rows = [
        (p.profile_id, p.name, p.enabled, p.settings, p.measured_speedup, _short(p.sql, 50))
        for p in ps
    ]
    cols = ["id", "name", "enabled", "settings", "speed-up", "sql"]
    console.print(table("SQL profiles", cols, rows))


@profile.command("enable", epilog=example("opscore sql profile enable 2"))
def profile_enable(profile_id: int = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """Enable a profile."""
    p = api.set_sql_profile_enabled(profile_id, True)
    print_json(p.as_dict()) if as_json else console.print(f"profile {p.profile_id} enabled")


@profile.command("disable", epilog=example("opscore sql profile disable 2"))
def profile_disable(profile_id: int = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """Disable a profile."""
    p = api.set_sql_profile_enabled(profile_id, False)
    print_json(p.as_dict()) if as_json else console.print(f"profile {p.profile_id} disabled")


@profile.command("drop", epilog=example("opscore sql profile drop 2"))
def profile_drop(profile_id: int = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """Drop a profile."""
    p = api.drop_sql_profile(profile_id)
    print_json(p.as_dict()) if as_json else console.print(f"profile {p.profile_id} dropped")


@profile.command(
    "export", epilog=example("opscore sql profile export 2 --style alter_role --role app")
)
def profile_export(
    profile_id: int = typer.Argument(...),
    style: str = typer.Option(
        "set_local", "--style", help="set_local, alter_role, alter_database, hints"
    ),  # fmt: skip
    role: str | None = typer.Option(None, "--role", help="For alter_role."),
) -> None:
    """A profile as SET LOCAL lines, ALTER ROLE/DATABASE ... SET, or pg_hint_plan hints."""
    typer.echo(api.export_sql_profile(profile_id, style, role=role), nl=False)
