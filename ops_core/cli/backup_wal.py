"""`opscore backup wal ...` and `opscore restore-point ...`: the WAL archive and restore points,
thin over ops_core.api (backup area); registered by ``cli.backup``."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, err_console, example, print_json, table

wal_app = typer.Typer(
    help="The WAL archive (pg_receivewal into the backup store).", no_args_is_help=True
)
rp_app = typer.Typer(help="Named restore points (pg_create_restore_point).", no_args_is_help=True)

TargetOpt = typer.Option(..., "--target", "-t", help="Target name.")

__all__ = ["TargetOpt", "mb", "rp_app", "wal_app"]


def mb(n: int | None) -> str:
    """A byte count as the backup commands print it (MB, one decimal)."""
    return "" if n is None else f"{n / 1024 / 1024:,.1f} MB"


@wal_app.command("receive", epilog=example("opscore backup wal receive --target prod"))
def wal_receive(
    target: str = TargetOpt,
    until: str = typer.Option(None, "--until", help="LSN (default: the current position)."),
    slot: str = typer.Option(None, "--slot", help="Replication slot to stream from."),
    as_json: bool = JsonOpt,
) -> None:
    """Stream WAL into the store up to a position (pg_receivewal), then stop."""
    with console.status("Receiving WAL ..."):
        st = api.receive_wal(target, until_lsn=until, slot=slot)
    _print_wal(st, as_json)


def _size(text: str) -> int:
    import re

    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)b?\s*", (text or "").lower())
    if not m:
        raise typer.BadParameter(f"{text!r} is not a size (e.g. 512MB, 2GB).")
    return int(m.group(1)) * 1024 ** (" kmgt".index(m.group(2) or " "))


@wal_app.command(
    "stream",
    epilog=example(
        "opscore backup wal stream --target prod",
        "opscore backup wal stream --target prod --max-retained 4GB --duration 3600",
    ),
)
def wal_stream(
    target: str = TargetOpt,
    slot: str = typer.Option(None, "--slot", help="Replication slot (default opscore_<target>)."),
    duration: float = typer.Option(None, "--duration", help="Stop after N seconds."),
    interval: float = typer.Option(5.0, "--interval", help="Seconds between checks."),
    max_retained: str = typer.Option(
        "1GB", "--max-retained", help="Warn when the slot holds more WAL than this."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Archive WAL continuously (pg_receivewal on a slot, restarted when it exits) until
    Ctrl-C / SIGTERM; checksums each segment and watches the WAL the slot holds."""

    def on_event(e: dict) -> None:
        if not as_json:
            color = {"info": "", "receiver_exit": "yellow"}.get(e["kind"], "red")
            tag = f"[{color}]{e['kind']}[/]" if color else e["kind"]
            console.print(f"{e['at'][:19]} {tag}: {e['message']}", highlight=False)

    state = api.stream_wal(
        target,
        slot=slot,
        duration=duration,
        interval=interval,
        max_retained_bytes=_size(max_retained),
        on_event=on_event,
    )
    if as_json:
        print_json(state)


@wal_app.command("guard", epilog=example("opscore backup wal guard --target prod"))
def wal_guard(
    target: str = TargetOpt,
    max_retained: str = typer.Option("1GB", "--max-retained", help="Drop the slot above this."),
    as_json: bool = JsonOpt,
) -> None:
    """Drop opscore's slot when no stream runs and it holds too much WAL (protects the disk)."""
    out = api.guard_wal_slot(target, max_retained_bytes=_size(max_retained))
    if as_json:
        print_json(out)
    elif out["dropped"]:
        console.print(f"[red]slot {out['slot']} dropped[/]: no stream ran and it held "
                      f"{mb(out['retained_bytes'])}; the archive will have a gap")  # fmt: skip
    else:
        console.print(f"slot {out['slot']}: {mb(out['retained_bytes']) or 'absent'}, stream "
                      + ("alive" if out["stream_alive"] else "not running"))  # fmt: skip


@wal_app.command(
    "archive-command",
    epilog=example(
        "opscore backup wal archive-command --target local",
        "opscore backup wal archive-command --target local --off",
    ),
)
def wal_archive_command(
    target: str = TargetOpt,
    off: bool = typer.Option(False, "--off", help="Stop archiving with archive_command."),
    as_json: bool = JsonOpt,
) -> None:
    """For the embedded server opscore owns: archive_command into the target's store, each
    segment checksummed as it is archived (archive_mode changes restart that server)."""
    out = api.archive_with_command(target, enable=not off)
    if as_json:
        print_json(out)
    else:
        console.print(
            f"[green]✓[/] archive_command {'on' if out['enabled'] else 'off'} for {target} "
            f"({out['wal_dir']})"
            + ("; the embedded server was restarted" if out["restarted"] else "")
        )


@wal_app.command("upload", epilog=example("opscore backup wal upload --target prod"))
def wal_upload(target: str = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Upload complete WAL segments not yet in the object store (each verified by checksum)."""
    with console.status("Uploading WAL ..."):
        rep = api.upload_wal(target)
    if as_json:
        print_json(rep.as_dict())
    else:
        console.print(f"[green]✓[/] {rep.files} segments uploaded ({rep.skipped} there already), "
                      f"{rep.verified} verified by checksum")  # fmt: skip


@wal_app.command("status", epilog=example("opscore backup wal status --target prod"))
def wal_status(target: str = TargetOpt, as_json: bool = JsonOpt) -> None:
    """What the WAL archive holds, and its gaps."""
    _print_wal(api.wal_status(target), as_json)


@wal_app.command("verify", epilog=example("opscore backup wal verify --target prod --json"))
def wal_verify(target: str = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Checksums and pg_waldump readability of the WAL archive; exit 1 on a damaged segment."""
    with console.status("Reading the WAL archive ..."):
        chk = api.verify_wal_archive(target)
    if as_json:
        print_json(chk.as_dict())
    else:
        d = chk.as_dict()
        mark = "[green]✓[/]" if chk.ok else "[red]✗[/]"
        console.print(
            f"{mark} {d['checked_segments']} complete segments checked"
            + (f", {len(d['unchecksummed'])} without a checksum" if d["unchecksummed"] else "")
        )
        for r in d["runs"]:
            console.print(
                f"  readable {r['first_segment']} .. LSN {r['end_lsn']} "
                f"(last commit {r['last_xact_time']}), ended by {r['end_detail']}",
                highlight=False,
            )
        for x in d["damaged"]:
            console.print(f"  [red]damaged[/] {x['segment']}: {x['reason']}", highlight=False)
    if not chk.ok:
        raise typer.Exit(1)


def _print_wal(st: api.WalStatus, as_json: bool) -> None:
    if as_json:
        print_json(st.as_dict())
        return
    console.print(
        f"WAL archive {st.wal_dir}: {st.complete_segments} complete + "
        f"{st.partial_segments} partial segments, {st.first_segment} .. "
        f"{st.last_segment}, timelines {st.timelines}"
    )
    for g in st.gaps:
        console.print(f"[red]gap[/] {g.first_missing} .. {g.last_missing} ({g.count} segments)")
    for sl in st.slots:
        state = "active" if sl["active"] else "[yellow]inactive[/]"
        console.print(f"slot {sl['slot']} ({state}) holds back {mb(sl['retained_bytes'])} of WAL")
    if st.stream:
        alive = "[green]running[/]" if st.stream.get("alive") else "[yellow]not running[/]"
        console.print(
            f"stream on slot {st.stream.get('slot')}: {alive}, last heartbeat "
            f"{st.stream.get('heartbeat')}, {st.stream.get('restarts', 0)} receiver restarts"
        )
        for e in st.stream.get("events", [])[-5:]:
            if e["kind"] != "info":
                console.print(f"  {e['at'][:19]} {e['kind']}: {e['message']}", highlight=False)


@rp_app.command("create", epilog=example("opscore restore-point create --target prod pre_deploy"))
def rp_create(
    name: str = typer.Argument(..., help="Restore point name (unique per target)."),
    target: str = TargetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Create a named restore point on the target (a write: one WAL record), and record it."""
    rp = api.create_restore_point(target, name)
    warning = api.wal_archiving_warning(target, rp.lsn)
    if warning:
        err_console.print(f"[yellow]Warning:[/] {warning}", highlight=False)
    if as_json:
        print_json({**rp.as_dict(), "warning": warning})
    else:
        console.print(f"[green]✓[/] restore point {rp.name} at LSN {rp.lsn}")


@rp_app.command("list", epilog=example("opscore restore-point list --target prod --json"))
def rp_list(target: str = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Restore points created through opscore."""
    pts = api.list_restore_points(target)
    if as_json:
        print_json([p.as_dict() for p in pts])
        return
    console.print(
        table(
            f"Restore points of {target}",
            ["name", "LSN", "timeline", "created"],
            [(p.name, p.lsn, p.timeline, p.created_at.isoformat()) for p in pts],
        )
    )
