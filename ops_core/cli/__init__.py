"""The `opscore` command: thin over ops_core.api (parse, call, print)."""

from __future__ import annotations

import sys

import psycopg
import typer

from .. import __version__, api
from ..errors import OpsCoreError
from . import db, target
from .common import JsonOpt, console, err_console, example, print_json

app = typer.Typer(
    name="opscore",
    help="Operations intelligence for PostgreSQL: AWR snapshots, ASH, ADDM, backup and PITR.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(target.app, name="target")


@app.command(
    epilog=example(
        "opscore init", "OPSCORE_REPOSITORY_DSN=postgresql://ops@repo/opscore opscore init"
    )
)
def init(as_json: bool = JsonOpt) -> None:
    """Create or upgrade the repository schema (idempotent; refuses a newer schema)."""
    info = api.init_repository()
    if as_json:
        print_json(info.as_dict())
        return
    what = ", ".join(info.applied_now) if info.applied_now else "nothing to do"
    console.print(
        f"Repository {info.dsn_description}: schema version {info.schema_version} (applied: {what})"
    )


@app.command(epilog=example("opscore version"))
def version() -> None:
    """Print the opscore version."""
    typer.echo(__version__)


def _register_optional() -> None:
    # one module per area: either a `register(app)` function (top-level commands) or a
    # sub-Typer `app` added under `name`
    import importlib

    for mod, name in [
        ("demo", None),
        ("webapp", None),
        ("snapshot", None),
        ("ash", "ash"),
        ("serve", None),
        ("workload", "workload"),
        ("backup", None),
        ("report", "report"),
        ("addm", "addm"),
        ("catalog", None),
        ("actions", "actions"),
        ("ml", "ml"),
        ("capacity", "capacity"),
    ]:
        m = importlib.import_module(f"ops_core.cli.{mod}")
        m.register(app) if name is None else app.add_typer(m.app, name=name)


_register_optional()


def main() -> None:
    try:
        app()
    except OpsCoreError as exc:
        err_console.print(f"[bold red]Error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err_console.print(f"[yellow]What to do:[/] {exc.hint}", highlight=False)
        sys.exit(exc.exit_code)
    except psycopg.Error as exc:
        err_console.print(f"[bold red]Database error:[/] {str(exc).strip()}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(130)
