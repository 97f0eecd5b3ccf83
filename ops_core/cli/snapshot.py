"""`opscore snapshot ...` and `opscore baseline ...`: the AWR workload repository."""

from __future__ import annotations

import typer

from .. import api
from ..errors import InvalidInput, OpsCoreError
from .common import JsonOpt, console, err_console, example, print_json, table

app = typer.Typer(
    help="AWR snapshots: capture, list, show, compare, delete, purge.", no_args_is_help=True
)
baseline_app = typer.Typer(
    help="Baselines: named snapshot ranges kept by retention, to compare against.",
    no_args_is_help=True,
)


def _fmt(v: object, digits: int = 2) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _short(q: object, n: int = 70) -> str:
    s = " ".join(str(q or "").split())
    return s if len(s) <= n else s[: n - 1] + "…"


#: narrow terminals leave these out first (the queryid, its time and the query stay)
SHOW_DROP = ("temp written", "WAL bytes", "blks hit", "db", "rows", "mean ms", "blks read")
DB_DROP = ("tup ins/upd/del", "temp bytes", "deadlocks", "rollbacks", "blks hit")


@app.command(epilog=example("opscore snapshot take", "opscore snapshot take --target prod"))
def take(
    target: str = typer.Option(None, "--target", "-t", help="Target (default: all targets)."),
    as_json: bool = JsonOpt,
) -> None:
    """Capture a snapshot of one target, or of every registered target."""
    names = [target] if target else [t.name for t in api.list_targets()]
    if not names:
        raise OpsCoreError("No targets registered.", "Add one: `opscore target add NAME DSN`.")
    results, failures = [], 0
    for name in names:
        try:
            with console.status(f"Snapshot of {name} ..."):
                info = api.take_snapshot(name)
            results.append(info.as_dict())
            if not as_json:
                state = "[green]ok[/]" if info.status == "ok" else f"[yellow]{info.status}[/]"
                console.print(
                    f"{name}: snapshot {info.snapshot_id} {state} at "
                    f"{info.captured_at:%Y-%m-%d %H:%M:%S}, {info.statements or 0} statements "
                    f"changed, target {info.target_ms:.0f} ms, total {info.total_ms:.0f} ms"
                    + (" (baseline: first snapshot)" if info.is_baseline else "")
                )
                for k, v in info.sources.items():
                    if v.startswith("error"):
                        console.print(f"  [yellow]{k}[/]: {v}")
                for r in info.resets:
                    console.print(f"  [blue]reset[/] {r['source']}: {r['reason']}")
        except api.SnapshotFailed as exc:
            failures += 1
            results.append(exc.info.as_dict())
            if not as_json:
                err_console.print(f"[red]{name}: failed[/] — {exc.message}", highlight=False)
    if as_json:
        print_json(results)
    if failures:
        raise typer.Exit(1)


@app.command(
    "list", epilog=example("opscore snapshot list --target demo", "opscore snapshot list --json")
)
def list_(
    target: str = typer.Option(None, "--target", "-t", help="Only this target."),
    limit: int = typer.Option(50, "--limit", "-n", help="How many (newest first)."),
    as_json: bool = JsonOpt,
) -> None:
    """List snapshots, newest first."""
    snaps = api.list_snapshots(target, limit)
    if as_json:
        print_json([s.as_dict() for s in snaps])
        return
    if not snaps:
        console.print("No snapshots yet: `opscore snapshot take`.")
        return
    console.print(
        table(
            "Snapshots",
            [
                "id",
                "target",
                "captured (UTC)",
                "status",
                "interval s",
                "statements",
                "target ms",
                "resets / error",
            ],
            [
                (
                    s.snapshot_id,
                    s.target,
                    f"{s.captured_at:%Y-%m-%d %H:%M:%S}",
                    s.status,
                    _fmt(s.interval_s, 0),
                    s.statements,
                    _fmt(s.target_ms, 0),
                    s.error or "; ".join(r["source"] for r in s.resets),
                )
                for s in snaps
            ],
        )
    )


@app.command(epilog=example("opscore snapshot show 42", "opscore snapshot show 42 --json"))
def show(
    snapshot_id: int = typer.Argument(..., help="Snapshot id."),
    top: int = typer.Option(15, "--top", help="Statements to show."),
    include_opscore: bool = typer.Option(
        False, "--include-opscore", help="Also show opscore's own statements and database."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """One snapshot: per-statement and per-database deltas of its interval."""
    d = api.get_snapshot(snapshot_id, include_opscore=include_opscore or None)
    if as_json:
        print_json(d.as_dict())
        return
    i = d.info
    console.print(
        f"[bold]Snapshot {i.snapshot_id}[/] of {i.target} at {i.captured_at:%Y-%m-%d %H:%M:%S} "
        f"UTC: {i.status}; interval {_fmt(i.interval_s, 0)} s after snapshot "
        f"{i.prev_snapshot_id or '-'}"
    )
    if i.error:
        console.print(f"[red]error:[/] {i.error}")
    if i.is_baseline:
        console.print("First snapshot of this target: a baseline, no deltas yet.")
    for k, v in i.sources.items():
        if v != "ok":
            console.print(f"  {k}: {v}")
    for r in i.resets:
        console.print(f"  [blue]reset[/] {r['source']}: {r['reason']}")
    st = d.statements.head(top)
    console.print(
        table(
            "Top statements (by total time in the interval)",
            [
                "queryid",
                "db",
                "calls",
                "total ms",
                "mean ms",
                "rows",
                "blks hit",
                "blks read",
                "temp written",
                "WAL bytes",
                "query",
            ],
            [
                (
                    r.queryid,
                    r.datname,
                    _fmt(r.calls),
                    _fmt(r.total_exec_time),
                    _fmt(r.mean_exec_time, 3),
                    _fmt(r.rows),
                    _fmt(r.shared_blks_hit),
                    _fmt(r.shared_blks_read),
                    _fmt(r.temp_blks_written),
                    _fmt(r.wal_bytes, 0),
                    _short(r.query),
                )
                for r in st.itertuples()
            ],
            drop=SHOW_DROP,
        )
    )
    console.print(
        table(
            "Databases",
            [
                "database",
                "commits",
                "rollbacks",
                "blks read",
                "blks hit",
                "tup ins/upd/del",
                "temp bytes",
                "deadlocks",
                "size",
            ],
            [
                (
                    r.datname,
                    _fmt(r.xact_commit),
                    _fmt(r.xact_rollback),
                    _fmt(r.blks_read),
                    _fmt(r.blks_hit),
                    f"{r.tup_inserted}/{r.tup_updated}/{r.tup_deleted}",
                    _fmt(r.temp_bytes),
                    _fmt(r.deadlocks),
                    _fmt(r.size_bytes),
                )
                for r in d.databases.itertuples()
            ],
            drop=DB_DROP,
        )
    )


@app.command(epilog=example("opscore snapshot delete --target demo --begin 10 --end 20"))
def delete(
    target: str = typer.Option(..., "--target", "-t", help="Target."),
    begin: int = typer.Option(..., "--begin", help="First snapshot id (inclusive)."),
    end: int = typer.Option(..., "--end", help="Last snapshot id (inclusive)."),
    as_json: bool = JsonOpt,
) -> None:
    """Delete a range of snapshots of one target (refuses to cut into a baseline)."""
    n = api.delete_snapshots(target, begin, end)
    print_json({"deleted": n}) if as_json else console.print(f"Deleted {n} snapshot(s).")


@app.command(epilog=example("opscore snapshot purge", "opscore snapshot purge --days 30"))
def purge(
    days: int = typer.Option(None, "--days", help="Keep this many days (default: setting)."),
    as_json: bool = JsonOpt,
) -> None:
    """Delete snapshots older than the retention; baselines' snapshots are kept."""
    n = api.purge_snapshots(days)
    print_json({"deleted": n}) if as_json else console.print(f"Purged {n} snapshot(s).")


@app.command(
    epilog=example(
        "opscore snapshot compare --target demo --begin 10 --end 14 --begin2 20 --end2 24",
        "opscore snapshot compare --target demo --begin 30 --end 34 --baseline monday",
    )
)
def compare(
    target: str = typer.Option(..., "--target", "-t", help="Target."),
    begin: int = typer.Option(None, "--begin", "-b", help="Period 1: first snapshot id."),
    end: int = typer.Option(None, "--end", "-e", help="Period 1: last snapshot id."),
    begin2: int = typer.Option(None, "--begin2", help="Period 2: first snapshot id."),
    end2: int = typer.Option(None, "--end2", help="Period 2: last snapshot id."),
    baseline: str = typer.Option(None, "--baseline", help="Period 2 is this baseline."),
    top: int = typer.Option(10, "--top", help="Statements to compare."),
    as_json: bool = JsonOpt,
    # the names of earlier versions, kept working (same options as `report compare` now)
    begin1: int = typer.Option(None, "--begin1", hidden=True),
    end1: int = typer.Option(None, "--end1", hidden=True),
) -> None:
    """Compare two periods: load profile, top SQL, I/O, wait events (when ASH has data)."""
    begin = begin if begin is not None else begin1
    end = end if end is not None else end1
    if begin is None or end is None:
        raise InvalidInput(
            "Period 1 needs --begin and --end (snapshot ids).",
            "List snapshots with `opscore snapshot list --target NAME`.",
        )
    c = api.compare_periods(target, begin, end, begin2, end2, baseline, top=top)
    if as_json:
        print_json(c.as_dict())
        return
    p1, p2 = c.period1, c.period2
    console.print(
        f"[bold]{c.target}[/]: period 1 = snapshots "
        f"{p1['begin_snapshot_id']}..{p1['end_snapshot_id']} ({_fmt(p1['elapsed_s'], 0)} s), "
        f"period 2 = {p2['label'] + ' ' if p2['label'] else ''}"
        f"{p2['begin_snapshot_id']}..{p2['end_snapshot_id']} ({_fmt(p2['elapsed_s'], 0)} s)"
    )
    console.print(
        table(
            "Load profile",
            ["metric", "1 per s", "1 per tx", "2 per s", "2 per tx", "change %"],
            [
                (
                    r.metric,
                    _fmt(r.per_second_1),
                    _fmt(r.per_transaction_1),
                    _fmt(r.per_second_2),
                    _fmt(r.per_transaction_2),
                    _fmt(r.change_pct, 1),
                )
                for r in c.load_profile.itertuples()
            ],
        )
    )
    console.print(
        table(
            "Top SQL (by total time, largest change first)",
            ["queryid", "calls 1", "calls 2", "ms 1", "ms 2", "mean ms 1", "mean ms 2", "query"],
            [
                (
                    r.queryid,
                    _fmt(r.calls_1),
                    _fmt(r.calls_2),
                    _fmt(r.total_exec_time_1),
                    _fmt(r.total_exec_time_2),
                    _fmt(r.mean_exec_time_1, 3),
                    _fmt(r.mean_exec_time_2, 3),
                    _short(r.query, 60),
                )
                for r in c.top_sql.itertuples()
            ],
        )
    )
    if c.io is not None and not c.io.empty:
        console.print(
            table(
                "I/O (pg_stat_io)",
                ["backend", "object", "context", "reads 1", "reads 2", "writes 1", "writes 2"],
                [
                    (
                        r.backend_type,
                        r.object,
                        r.context,
                        _fmt(r.reads_1),
                        _fmt(r.reads_2),
                        _fmt(r.writes_1),
                        _fmt(r.writes_2),
                    )
                    for r in c.io.itertuples()
                ],
            )
        )
    if c.waits is not None:
        console.print(
            table("Wait events (DB time s)", list(c.waits.columns), c.waits.itertuples(index=False))
        )
    for n in c.notes:
        console.print(f"[dim]{n}[/]")


@baseline_app.command(
    "create", epilog=example("opscore baseline create monday --target demo --begin 10 --end 40")
)
def baseline_create(
    name: str = typer.Argument(..., help="Baseline name."),
    target: str = typer.Option(..., "--target", "-t", help="Target."),
    begin: int = typer.Option(..., "--begin", help="First snapshot id."),
    end: int = typer.Option(..., "--end", help="Last snapshot id."),
    as_json: bool = JsonOpt,
) -> None:
    """Name a snapshot range; its snapshots are then kept by retention."""
    b = api.create_baseline(name, target, begin, end)
    if as_json:
        print_json(b.as_dict())
    else:
        console.print(
            f"Baseline {b.name}: {b.target} snapshots {b.begin_snapshot_id}..{b.end_snapshot_id}"
        )


@baseline_app.command(
    "list", epilog=example("opscore baseline list", "opscore baseline list --json")
)
def baseline_list(
    target: str = typer.Option(None, "--target", "-t", help="Only this target."),
    as_json: bool = JsonOpt,
) -> None:
    """List baselines."""
    bl = api.list_baselines(target)
    if as_json:
        print_json([b.as_dict() for b in bl])
        return
    console.print(
        table(
            "Baselines",
            ["name", "target", "begin", "end", "from (UTC)", "to (UTC)"],
            [
                (
                    b.name,
                    b.target,
                    b.begin_snapshot_id,
                    b.end_snapshot_id,
                    f"{b.begin_at:%Y-%m-%d %H:%M}" if b.begin_at else "(purged)",
                    f"{b.end_at:%Y-%m-%d %H:%M}" if b.end_at else "(purged)",
                )
                for b in bl
            ],
        )
    )


@baseline_app.command("delete", epilog=example("opscore baseline delete monday"))
def baseline_delete(
    name: str = typer.Argument(..., help="Baseline name."), as_json: bool = JsonOpt
) -> None:
    """Delete a baseline (its snapshots become subject to retention again)."""
    b = api.delete_baseline(name)
    print_json({"deleted": b.name}) if as_json else console.print(f"Deleted baseline {b.name}.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="snapshot")
    root.add_typer(baseline_app, name="baseline")
