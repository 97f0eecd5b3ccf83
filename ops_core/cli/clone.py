"""`opscore clone ...`: servers restored from opscore's backups and kept running (thin over
ops_core.api; a clone is made with `opscore backup restore ... --start`)."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(
    help="Clones: restored servers opscore started (`backup restore --start`).",
    no_args_is_help=True,
)
NameArg = typer.Argument(..., help="Clone name (see `opscore clone list`).")


@app.command("list", epilog=example("opscore clone list --json"))
def list_(as_json: bool = JsonOpt) -> None:
    """Clones, running or stopped, with their connection URL."""
    cl = api.list_clones()
    if as_json:
        print_json([c.as_dict() for c in cl])
        return
    if not cl:
        console.print("No clones: `opscore backup restore --target T --to DIR --start`.")
        return
    console.print(
        table(
            "Clones",
            ["clone", "running", "backup", "recovery target", "url", "data dir"],
            [(c.clone, c.running, c.backup_id, c.recovery_target, c.url, c.data_dir) for c in cl],
        )
    )


@app.command(epilog=example("opscore clone stop shop_20261205170000"))
def stop(name: str = NameArg, as_json: bool = JsonOpt) -> None:
    """Stop a clone (its data directory stays until `opscore clone drop`)."""
    c = api.stop_clone(name)
    if as_json:
        print_json(c.as_dict())
    else:
        console.print(f"[green]✓[/] clone {c.clone} stopped")


@app.command(epilog=example("opscore clone drop shop_20261205170000"))
def drop(name: str = NameArg, as_json: bool = JsonOpt) -> None:
    """Stop a clone and delete its data directory and record."""
    c = api.drop_clone(name)
    if as_json:
        print_json(c.as_dict())
    else:
        console.print(f"[green]✓[/] clone {c.clone} dropped ({c.data_dir} deleted)")
