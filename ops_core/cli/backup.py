"""`opscore backup ...` and `opscore restore-point ...`: thin over ops_core.api (backup area).
The `backup wal` and `restore-point` commands are in ``backup_wal``."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .. import api
from ..errors import OpsCoreError
from .backup_wal import TargetOpt, mb, rp_app, wal_app
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(
    help="Physical and logical backups, WAL archive, restore and PITR, verification, retention.",
    no_args_is_help=True,
)
app.add_typer(wal_app, name="wal")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="backup")
    root.add_typer(rp_app, name="restore-point")


def _physical(kind: str, target: str, max_rate: str | None, as_json: bool) -> None:
    fn = api.take_full_backup if kind == "full" else api.take_incremental_backup
    if as_json:
        print_json(fn(target, max_rate=max_rate).as_dict())
        return
    with Progress(
        TextColumn(f"[bold]{kind} backup of {target}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("backup", total=None)

        def on_progress(done_kb: int, total_kb: int) -> None:
            progress.update(task, completed=done_kb * 1024, total=max(total_kb, done_kb) * 1024)

        b = fn(target, on_progress=on_progress, max_rate=max_rate)
    console.print(
        f"[green]✓[/] {b.kind} backup [bold]{b.backup_id}[/]: {mb(b.size_bytes)} in "
        f"{b.duration_s:.1f} s, LSN {b.start_lsn} → {b.stop_lsn} (timeline {b.timeline})"
        + (f", based on {b.parent_id}" if b.parent_id else "")
    )


MaxRate = typer.Option(None, "--max-rate", help="Limit transfer rate (pg_basebackup -r, e.g. 50M).")


@app.command(epilog=example("opscore backup full --target prod"))
def full(target: str = TargetOpt, max_rate: str = MaxRate, as_json: bool = JsonOpt) -> None:
    """Full physical backup (pg_basebackup: plain, manifest with checksums, WAL streamed)."""
    _physical("full", target, max_rate, as_json)


@app.command(epilog=example("opscore backup incremental --target prod"))
def incremental(target: str = TargetOpt, max_rate: str = MaxRate, as_json: bool = JsonOpt) -> None:
    """Incremental backup against the newest backup (PostgreSQL 17+, summarize_wal=on)."""
    _physical("incremental", target, max_rate, as_json)


@app.command(epilog=example("opscore backup logical --target prod --database app"))
def logical(
    target: str = TargetOpt,
    database: str = typer.Option(None, "--database", "-d", help="Default: the target's."),
    as_json: bool = JsonOpt,
) -> None:
    """Logical backup of one database (pg_dump -Fc)."""
    with console.status(f"pg_dump of {database or 'the target database'} ..."):
        b = api.take_logical_backup(target, database)
    if as_json:
        print_json(b.as_dict())
    else:
        console.print(f"[green]✓[/] dump {b.backup_id} of {b.database}: {mb(b.size_bytes)}")


@app.command("list", epilog=example("opscore backup list --target prod --json"))
def list_(target: str = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Backups of a target, oldest first."""
    backups = api.list_backups(target)
    if as_json:
        print_json([b.as_dict() for b in backups])
        return
    if not backups:
        console.print(f"No backups of {target} yet: `opscore backup full --target {target}`.")
        return
    console.print(
        table(
            f"Backups of {target}",
            ["id", "kind", "status", "based on", "size", "duration", "finished", "stop LSN"],
            [
                (
                    b.backup_id,
                    b.kind + (f" ({b.database})" if b.database else ""),
                    b.status,
                    b.parent_id,
                    mb(b.size_bytes),
                    f"{b.duration_s:.1f} s" if b.duration_s is not None else "",
                    b.finished_at.strftime("%Y-%m-%d %H:%M:%S") if b.finished_at else "",
                    b.stop_lsn,
                )
                for b in backups
            ],
        )
    )


@app.command(epilog=example("opscore backup show 20261125T172100-F3a9c --json"))
def show(backup_id: str = typer.Argument(..., help="Backup id."), as_json: bool = JsonOpt) -> None:
    """One backup: its record, chain, dependent incrementals and verification history."""
    d = api.get_backup(backup_id)
    if as_json:
        print_json(d.as_dict())
        return
    rows = [(k, v) for k, v in d.backup.as_dict().items() if v is not None]
    rows += [("chain", " → ".join(d.chain)), ("incrementals on it", ", ".join(d.children))]
    console.print(table(f"Backup {backup_id}", ["field", "value"], rows))
    if d.checks:
        console.print(
            table(
                "Verifications",
                ["when", "check", "ok", "detail"],
                [
                    (
                        c.checked_at.strftime("%Y-%m-%d %H:%M:%S"),
                        c.kind,
                        c.ok,
                        "; ".join(c.detail.get("errors", [])[:3]) or "",
                    )
                    for c in d.checks
                ],
            )
        )


@app.command(epilog=example("opscore backup verify 20261125T172100-F3a9c --test-restore"))
def verify(
    backup_id: str = typer.Argument(..., help="Backup id."),
    test_restore: bool = typer.Option(
        False, "--test-restore", help="Also restore to a temp dir, start it, run amcheck."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """pg_verifybackup (pg_restore -l for a dump); exit code 1 when the backup is damaged."""
    with console.status(f"Verifying {backup_id} ..."):
        rep = api.verify_backup(backup_id, test_restore=test_restore)
    if as_json:
        print_json(rep.as_dict())
    else:
        for c in rep.checks:
            mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
            console.print(f"{mark} {c.kind} ({c.duration_s} s)")
            for e in c.detail.get("errors", [])[:10]:
                console.print(f"   {e}", highlight=False)
        if rep.bad_files:
            console.print(f"[red]Damaged files:[/] {', '.join(rep.bad_files)}")
    if not rep.ok:
        raise typer.Exit(1)


@app.command(
    epilog=example(
        "opscore backup restore --target prod --to /srv/restore/prod",
        "opscore backup restore --target prod --to /srv/pitr --time '2026-11-25 17:30:00+00'",
        "opscore backup restore --target prod --to /srv/pitr --name before_migration",
    )
)
def restore(
    target: str = TargetOpt,
    to: str = typer.Option(..., "--to", help="New (or empty) data directory."),
    backup_id: str = typer.Option(None, "--backup", help="Default: newest before the target."),
    time: str = typer.Option(None, "--time", help="Recover to this time (ISO 8601)."),
    lsn: str = typer.Option(None, "--lsn", help="Recover to this LSN."),
    name: str = typer.Option(None, "--name", help="Recover to this restore point."),
    latest: bool = typer.Option(False, "--latest", help="Replay all archived WAL."),
    os_user: str = typer.Option(None, "--os-user", help="Owner of the restored directory."),
    start: bool = typer.Option(
        False, "--start", help="Keep the restored server running as a clone owned by opscore."
    ),
    clone: str = typer.Option(None, "--clone", help="Clone name (with --start)."),
    port: int = typer.Option(None, "--port", help="Clone port (with --start; default: free)."),
    from_remote: bool = typer.Option(
        False, "--from-remote", help="Read the backup and WAL from the object store."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Restore into a new directory (a chain is combined); PITR with --time/--lsn/--name/--latest.

    The archive is proven to cover the target first (or the restore is refused with the
    reason); success is reported only after the restored server started and reached it."""
    with console.status("Restoring, then starting the restored server to prove it ..."):
        res = api.restore_backup(
            target,
            to,
            backup_id=backup_id,
            target_time=time,
            target_lsn=lsn,
            target_name=name,
            latest=latest,
            os_user=os_user,
            start=start,
            clone=clone,
            port=port,
            from_remote=from_remote,
        )
    if as_json:
        print_json({**res.as_dict(), **(res.clone or {})})
        return
    console.print(
        f"[green]✓[/] restored {' + '.join(res.chain)} into {res.destination} "
        f"({mb(res.size_bytes)}, {res.duration_s:.1f} s); recovery to {res.recovery_target}"
        + (f", {res.wal_segments} WAL segments copied" if res.wal_segments else "")
    )
    proof = res.proof or {}
    if res.coverage:
        console.print(f"  archive proven: {res.coverage['detail']}", highlight=False)
    console.print(
        "  proven by starting it: "
        + (proof.get("recovery_stopping") or proof.get("last_completed_transaction") or "")
        + f" (timeline {proof.get('timeline')}, WAL {proof.get('wal_lsn')})",
        highlight=False,
    )
    for n in res.notes:
        console.print(f"[yellow]note:[/] {n}")
    if res.clone:
        console.print(
            f"[green]✓[/] clone [bold]{res.clone['clone']}[/] running: {res.clone['url']} "
            f"(`opscore clone stop|drop {res.clone['clone']}`)"
        )
        return
    console.print(
        f"Start it with PostgreSQL {res.server_major}'s pg_ctl -D {res.destination} "
        f"-o '-p PORT' start" + (f" (as OS user {res.os_user})" if res.os_user else "")
    )


@app.command(
    epilog=example(
        "opscore backup clone 20261125T172100-F3a9c",
        "opscore backup clone 20261125T172100-F3a9c --time '2026-11-25 17:30:00+00' "
        "--clone before_fix --json",
    )
)
def clone(
    backup_id: str = typer.Argument(..., help="Backup id (see `opscore backup list`)."),
    clone_name: str = typer.Option(None, "--clone", help="Clone name (default: target + time)."),
    time: str = typer.Option(None, "--time", help="Recover to this time (ISO 8601)."),
    lsn: str = typer.Option(None, "--lsn", help="Recover to this LSN."),
    name: str = typer.Option(None, "--name", help="Recover to this restore point."),
    as_json: bool = JsonOpt,
) -> None:
    """Start a clone from a backup (optionally at a time, LSN or restore point inside its
    recoverable window) on a free port; see `opscore clone list|stop|drop`."""
    with console.status(f"Restoring {backup_id} and starting the clone ..."):
        c = api.clone_backup(backup_id, name=clone_name, time=time, lsn=lsn, restore_point=name)
    if as_json:
        print_json(c.as_dict())
        return
    console.print(
        f"[green]✓[/] clone [bold]{c.clone}[/] of backup {c.backup_id} running: {c.url} "
        f"(recovered to {c.recovery_target}; `opscore clone stop|drop {c.clone}`)",
        highlight=False,
    )


@app.command(
    "restore-dump",
    epilog=example(
        "opscore backup restore-dump 20261125T172100-L1b2c --database shop_restored",
        "opscore backup restore-dump 20261125T172100-L1b2c --database shop_copy --target staging "
        "--no-owner",
    ),
)
def restore_dump(
    backup_id: str = typer.Argument(..., help="Id of a logical backup (pg_dump)."),
    database: str = typer.Option(..., "--database", "-d", help="NEW database to create."),
    target: str = typer.Option(
        None, "--target", "-t", help="Target to restore on (default: the dump's own target)."
    ),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, max=64, help="Parallel pg_restore jobs."),
    no_owner: bool = typer.Option(
        False, "--no-owner", help="Skip ownership and grants (roles missing on this server)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Restore a logical backup into a NEW database (an existing database is refused; a failed
    restore drops the database it created)."""
    if as_json:
        print_json(
            api.restore_logical_backup(
                backup_id, database, target=target, jobs=jobs, no_owner=no_owner
            ).as_dict()
        )
        return
    with console.status(f"Restoring {backup_id} into {database} ...") as status:

        def on_line(line: str) -> None:
            status.update(f"Restoring {backup_id} into {database}: {line.strip()[:100]}")

        res = api.restore_logical_backup(
            backup_id, database, target=target, jobs=jobs, no_owner=no_owner, on_line=on_line
        )
    console.print(
        f"[green]✓[/] restored {res.backup_id} into database [bold]{res.database}[/] on "
        f"{res.target}: {res.tables_restored} of {res.tables_in_dump} tables of the dump, "
        f"{mb(res.size_bytes)}, {res.duration_s:.1f} s"
    )


@app.command(epilog=example("opscore backup delete 20261125T172100-F3a9c"))
def delete(
    backup_id: str = typer.Argument(..., help="Backup id."),
    cascade: bool = typer.Option(False, "--cascade", help="Also delete incrementals on it."),
    as_json: bool = JsonOpt,
) -> None:
    """Delete a backup (files and record); refuses to break a chain without --cascade."""
    gone = api.delete_backup(backup_id, cascade=cascade)
    print_json({"deleted": gone}) if as_json else console.print(f"Deleted {', '.join(gone)}.")


@app.command(
    epilog=example(
        "opscore backup schedule --target prod",
        "opscore backup schedule --target prod --defaults --redundancy 2",
        "opscore backup schedule --target prod --full '0 2 * * 0' --incremental 'every 1d'",
    )
)
def schedule(
    target: str = TargetOpt,
    full: str = typer.Option(None, "--full", help="Cron or 'every N[smhd]'; '' removes."),
    incremental: str = typer.Option(None, "--incremental"),
    verify: str = typer.Option(None, "--verify"),
    retention: str = typer.Option(None, "--retention"),
    wal: str = typer.Option(None, "--wal", help="WAL receiving (bounded runs)."),
    stream: str = typer.Option(
        None, "--stream", help="Continuous WAL stream, e.g. 'every 1h' (each run that long)."
    ),
    redundancy: int = typer.Option(None, "--redundancy", help="Keep N full backups."),
    window: float = typer.Option(None, "--recovery-window-days"),
    defaults: bool = typer.Option(False, "--defaults", help="Start from the recommended jobs."),
    as_json: bool = JsonOpt,
) -> None:
    """Show or set the target's backup schedule and retention policy."""
    jobs = {
        k: v
        for k, v in dict(
            full=full,
            incremental=incremental,
            verify=verify,
            retention=retention,
            wal=wal,
            stream=stream,
        ).items()
        if v is not None
    }
    if jobs or redundancy is not None or window is not None or defaults:
        s = api.set_backup_schedule(
            target, jobs, redundancy=redundancy, recovery_window_days=window, defaults=defaults
        )
    else:
        s = api.get_backup_schedule(target)
    if as_json:
        print_json(s.as_dict())
        return
    nxt = s.next_runs()
    console.print(
        table(
            f"Backup schedule of {target}",
            ["job", "when", "next run (UTC)"],
            [(j, w, nxt.get(j, "")) for j, w in s.jobs.items()],
        )
    )
    console.print(f"Retention: {s.retention or 'not set'}")


@app.command(
    "retention",
    epilog=example(
        "opscore backup retention --target prod --redundancy 2",
        "opscore backup retention --target prod --apply",
    ),
)
def retention_(
    target: str = TargetOpt,
    redundancy: int = typer.Option(None, "--redundancy"),
    window: float = typer.Option(None, "--recovery-window-days"),
    apply: bool = typer.Option(False, "--apply", help="Delete (default: dry run)."),
    as_json: bool = JsonOpt,
) -> None:
    """Show (dry run) or apply retention: which backups and WAL go, and why."""
    plan = api.apply_retention(
        target, redundancy=redundancy, recovery_window_days=window, dry_run=not apply
    )
    if as_json:
        print_json(plan.as_dict())
        return
    verb = "would delete" if plan.dry_run else "deleted"
    console.print(f"Policy: {plan.policy}")
    console.print(
        table(
            None,
            ["backup", "kind", "action", "why"],
            [(d["backup_id"], d["kind"], verb, d["reason"]) for d in plan.delete]
            + [(k["backup_id"], k["kind"], "keep", k["reason"]) for k in plan.keep],
        )
    )
    console.print(
        f"WAL: {verb} {len(plan.wal_delete)} segments (keeping from {plan.wal_keep_from or '-'})."
    )


@app.command(epilog=example("opscore backup report", "opscore backup report --target prod --json"))
def report(
    target: str = typer.Option(None, "--target", "-t", help="Default: all targets."),
    as_json: bool = JsonOpt,
) -> None:
    """Backups per target: chains, sizes, durations, verification, recoverability window."""
    reps = api.backup_report(target)
    if as_json:
        print_json([r.as_dict() for r in reps])
        return
    for r in reps:
        rec = r.recoverability
        console.print(f"[bold]{r.target}[/] (store {r.store})")
        if rec.get("windows"):
            console.print(f"  recoverable ({rec['note']}):")
            for w in rec["windows"]:
                console.print(
                    f"  • {w['from']['time']} (LSN {w['from']['lsn']}, {w['from']['bound']})"
                    f" → {w['to']['time']} (LSN {w['to']['lsn']}, {w['to']['bound']})",
                    highlight=False,
                )
        else:
            console.print(f"  [yellow]not recoverable:[/] {rec['note']}")
        console.print(
            table(
                None,
                ["chain", "backups", "size"],
                [(c["full"], " → ".join(c["members"]), mb(c["size_bytes"])) for c in r.chains],
            )
        )
        for g in r.wal["gaps"]:
            console.print(f"  [red]WAL gap[/] {g['first_missing']} .. {g['last_missing']}")
        for d in r.wal.get("damaged", []):
            console.print(f"  [red]damaged WAL[/] {d['segment']}: {d['reason']}", highlight=False)


@app.command(epilog=example("opscore backup store --target prod /backups/prod"))
def store(
    target: str = TargetOpt,
    path: str = typer.Argument(None, help="New store directory (omit to show)."),
) -> None:
    """Show or set where a target's backups and WAL go."""
    s = api.set_backup_store(target, path) if path else api.backup_store(target)
    console.print(str(s.root))


@app.command(
    epilog=example(
        "opscore backup remote --target prod s3://backups/prod",
        "opscore backup remote --target prod s3://backups/prod --option "
        "endpoint_url=http://127.0.0.1:9000",
        "opscore backup remote --target prod --remove",
    )
)
def remote(
    target: str = TargetOpt,
    url: str = typer.Argument(None, help="fsspec URL: s3://, gs://, az://, a local path."),
    option: list[str] = typer.Option(
        None, "--option", "-o", help="KEY=VALUE storage option (no secrets: use the env)."
    ),
    remove: bool = typer.Option(False, "--remove", help="Stop uploading for this target."),
) -> None:
    """Set (or show, or remove) the object store that backups and WAL are uploaded to."""
    opts = {}
    for o in option or []:
        k, sep, v = o.partition("=")
        if not sep or not k:
            raise typer.BadParameter(f"{o!r} is not KEY=VALUE.")
        opts[k] = v
    if remove:
        api.set_backup_remote(target, None)
        console.print(f"{target}: no object store")
    elif url:
        api.set_backup_remote(target, url, opts)
        console.print(f"[green]✓[/] {target} uploads to {url}")
    else:
        console.print(str(api.backup_remote(target) or "no object store"))


@app.command(epilog=example("opscore backup providers", "opscore backup providers --json"))
def providers(as_json: bool = JsonOpt) -> None:
    """The object stores backups can be uploaded to, and whether each one's package is here."""
    rows = api.cloud_providers()
    if as_json:
        print_json(rows)
        return
    table = Table("provider", "URL example", "needs", "installed")
    for r in rows:
        table.add_row(
            r["provider"], r["example_url"], r["package"], "yes" if r["installed"] else "no"
        )
    console.print(table)


@app.command(epilog=example("opscore backup upload 20261125T172100-F3a9c"))
def upload(
    backup_id: str = typer.Argument(..., help="Backup id."), as_json: bool = JsonOpt
) -> None:
    """Upload a backup to the object store; every file is read back and checksummed."""
    with console.status(f"Uploading {backup_id} ..."):
        rep = api.upload_backup(backup_id)
    if as_json:
        print_json(rep.as_dict())
    else:
        console.print(f"[green]✓[/] {rep.files} files ({mb(rep.bytes)}) uploaded to {rep.url}, "
                      f"{rep.verified} verified by checksum")  # fmt: skip


@app.command(epilog=example("opscore backup recatalog --target prod"))
def recatalog(target: str = TargetOpt) -> None:
    """Rebuild the catalog from the store's manifests (after losing the repository)."""
    added = api.recatalog(target)
    console.print(f"Added {len(added)} backups to the catalog: {', '.join(added) or '-'}")


__all__ = ["app", "register", "OpsCoreError"]
