"""`opscore dashboard`: saved dashboards (panels over the repository), built-in ones included."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(help="Dashboards: panels of charts and tables over the repository.")


def _panels(panels_file: Path | None) -> list | None:
    if panels_file is None:
        return None
    try:
        return json.loads(panels_file.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"--panels-file: not a readable JSON list ({exc}).") from None


PanelsOpt = typer.Option(
    None, "--panels-file", help='JSON list of {"title", "kind", "source", "params"}.'
)


@app.command(
    "create", epilog=example("opscore dashboard create mine --title 'My view' --panels-file p.json")
)
def create(
    name: str,
    title: str = typer.Option(..., "--title"),
    panels_file: Path = typer.Option(..., "--panels-file", help="JSON list of panels."),
    description: str | None = typer.Option(None, "--description"),
    target: str | None = typer.Option(None, "--target", "-t", help="Pin it to a target."),
    as_json: bool = JsonOpt,
) -> None:
    """Save a dashboard."""
    d = api.create_dashboard(name, title, _panels(panels_file) or [], description or "", target)
    print_json(d) if as_json else console.print(f"Dashboard {d.name!r} saved.")


@app.command("list", epilog=example("opscore dashboard list"))
def list_(as_json: bool = JsonOpt) -> None:
    """Dashboards (built-in first)."""
    ds = api.list_dashboards()
    if as_json:
        print_json(ds)
        return
    console.print(
        table(
            None,
            ["name", "title", "panels", "target", "built in", "description"],
            [
                [
                    d.name,
                    d.title,
                    len(d.panels),
                    d.target or "-",
                    "yes" if d.builtin else "no",
                    d.description,
                ]
                for d in ds
            ],  # fmt: skip
        )
    )


@app.command("show", epilog=example("opscore dashboard show target -t prod --since 6h"))
def show(
    name: str,
    target: str | None = typer.Option(None, "--target", "-t"),
    since: str = typer.Option("1h", "--since", help="Window (30m, 6h)."),
    as_json: bool = JsonOpt,
) -> None:
    """Evaluate a dashboard's panels (the app draws them as charts)."""
    data = api.dashboard_data(name, target, since=since)
    if as_json:
        print_json(data)
        return
    where = data.target or "no target"
    console.print(f"[bold]{data.title}[/] ({where}, {data.begin:%F %T} -> {data.end:%T} UTC)")
    for p in data.panels:
        console.print(f"\n[bold]{p.title}[/] ({p.kind}, {p.source}): {len(p.rows)} rows")
        if p.note:
            console.print(f"  [dim]{p.note}[/]")
        elif len(p.rows):
            head = p.rows.head(10)
            cols = [
                c for c in ([p.x] if p.x else []) + p.y + ([p.color] if p.color else []) if c
            ] or list(head.columns[:6])
            console.print(table(None, cols, [[r[c] for c in cols] for _, r in head.iterrows()]))


@app.command("update", epilog=example("opscore dashboard update mine --title 'Renamed'"))
def update(
    name: str,
    title: str | None = typer.Option(None, "--title"),
    panels_file: Path | None = PanelsOpt,
    description: str | None = typer.Option(None, "--description"),
    target: str | None = typer.Option(None, "--target", "-t"),
    as_json: bool = JsonOpt,
) -> None:
    """Change a dashboard."""
    d = api.update_dashboard(name, title, _panels(panels_file), description, target)
    print_json(d) if as_json else console.print(f"Dashboard {d.name!r} updated.")


@app.command("delete", epilog=example("opscore dashboard delete mine"))
def delete(name: str) -> None:
    """Delete a user dashboard (built-in ones stay)."""
    api.delete_dashboard(name)
    console.print(f"Dashboard {name!r} deleted.")
