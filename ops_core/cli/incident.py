"""`opscore incident` (list, show, open, resolve) and `opscore dump` (create, list, show,
download, delete): diagnostics incidents and evidence bundles."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(help="Incidents: opened from critical alerts, ADDM findings, healing actions.")
dump_app = typer.Typer(help="Diagnostic dumps: a zip of the evidence of an interval.")
TargetOpt = typer.Option(None, "--target", "-t", help="Target name.")


@app.command("list", epilog=example("opscore incident list", "opscore incident list --status all"))
def incident_list(
    target: str | None = TargetOpt,
    status: str = typer.Option("open", "--status", help="open, resolved or all."),
    severity: str | None = typer.Option(None, "--severity", help="info, warning, critical."),
    limit: int = typer.Option(100, "--limit"),
    as_json: bool = JsonOpt,
) -> None:
    """Incidents, newest first (new ones opened from their sources first)."""
    items = api.list_incidents(target, status=status, severity=severity, limit=limit)
    if as_json:
        print_json(items)
        return
    console.print(
        table(
            None,
            ["id", "target", "opened", "severity", "source", "status", "title"],
            [
                [i.incident_id, i.target, i.opened_at, i.severity, i.source, i.status, i.title]
                for i in items
            ],  # fmt: skip
        )
    )


@app.command("show", epilog=example("opscore incident show 12"))
def incident_show(incident_id: int, as_json: bool = JsonOpt) -> None:
    """One incident with its detail and dumps."""
    i = api.get_incident(incident_id)
    if as_json:
        print_json(i)
        return
    console.print(f"[bold]#{i.incident_id}[/] {i.title} ({i.severity}, {i.status}, {i.source})")
    console.print(f"  target {i.target}, opened {i.opened_at}, resolved {i.resolved_at or '-'}")
    console.print(f"  detail: {i.detail}")
    if i.dumps:
        console.print(f"  dumps: {', '.join(map(str, i.dumps))}")


@app.command("open", epilog=example("opscore incident open 'checkout slow' --severity critical"))
def incident_open(
    title: str,
    target: str | None = TargetOpt,
    severity: str = typer.Option("warning", "--severity"),
    note: str | None = typer.Option(None, "--note"),
    as_json: bool = JsonOpt,
) -> None:
    """Open an incident by hand."""
    i = api.open_incident(title, target, severity, note or "")
    print_json(i) if as_json else console.print(f"Incident {i.incident_id} opened.")


@app.command("resolve", epilog=example("opscore incident resolve 12 --resolution 'index added'"))
def incident_resolve(
    incident_id: int,
    resolution: str = typer.Option("resolved", "--resolution"),
    as_json: bool = JsonOpt,
) -> None:
    """Resolve an incident."""
    i = api.resolve_incident(incident_id, resolution)
    print_json(i) if as_json else console.print(f"Incident {i.incident_id} resolved.")


def _dump_line(d) -> None:
    console.print(f"Dump {d.dump_id} ({d.status}) of {d.target}: {d.path} ({d.size_bytes} bytes)")
    for name, state in d.sections.items():
        console.print(f"  {name}: {state}")


@dump_app.command(
    "create",
    epilog=example("opscore dump create --minutes 30", "opscore dump create --incident 12"),
)
def dump_create(
    target: str | None = TargetOpt,
    minutes: int = typer.Option(60, "--minutes", help="The interval before now (or the incident)."),
    incident: int | None = typer.Option(None, "--incident", help="Take it for this incident."),
    as_json: bool = JsonOpt,
) -> None:
    """Write a diagnostic dump (zip, passwords scrubbed)."""
    d = api.create_dump(target, minutes=minutes, incident_id=incident)
    print_json(d) if as_json else _dump_line(d)


@dump_app.command("list", epilog=example("opscore dump list"))
def dump_list(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Dumps, newest first."""
    ds = api.list_dumps(target)
    if as_json:
        print_json(ds)
        return
    console.print(
        table(
            None,
            ["id", "target", "created", "status", "incident", "bytes", "file"],
            [
                [d.dump_id, d.target, d.created_at, d.status, d.incident_id, d.size_bytes, d.path]
                for d in ds
            ],  # fmt: skip
        )
    )


@dump_app.command("show", epilog=example("opscore dump show 3"))
def dump_show(dump_id: int, as_json: bool = JsonOpt) -> None:
    """A dump's status and sections."""
    d = api.get_dump(dump_id)
    print_json(d) if as_json else _dump_line(d)


@dump_app.command("download", epilog=example("opscore dump download 3 --output ./dump-3.zip"))
def dump_download(
    dump_id: int,
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the zip."),
) -> None:
    """Copy a dump's zip to a file."""
    data = api.dump_download(dump_id)
    output.write_bytes(data)
    console.print(f"{output} ({len(data)} bytes)")


@dump_app.command("delete", epilog=example("opscore dump delete 3"))
def dump_delete(dump_id: int) -> None:
    """Delete a dump (file and record)."""
    api.delete_dump(dump_id)
    console.print(f"Dump {dump_id} deleted.")
