"""The `opscore` command: thin over ops_core.api (parse, call, print)."""

from __future__ import annotations

import sys

import typer

from .. import __version__, api
from . import db, target
from .common import JsonOpt, OpsCoreGroup, console, example, print_json, report_error
from .validate import harden

app = typer.Typer(
    name="opscore",
    help="Operations intelligence for PostgreSQL: AWR snapshots, ASH, ADDM, backup and PITR.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=OpsCoreGroup,
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
        ("clone", "clone"),
        ("report", "report"),
        ("addm", "addm"),
        ("catalog", None),
        ("actions", "actions"),
        ("alert", "alert"),
        ("metrics", "metrics"),
        ("health", None),
        ("ml", "ml"),
        ("capacity", "capacity"),
        ("autonomous", "autonomous"),
        ("resource", "resource"),
        ("locks", None),
        ("vviews", "v"),
        ("dashboard", "dashboard"),
        ("httpapi", "api"),
        ("sql", None),
        ("replication", None),
        ("fleet", None),
    ]:
        m = importlib.import_module(f"ops_core.cli.{mod}")
        m.register(app) if name is None else app.add_typer(m.app, name=name)


_register_optional()


def _register_diagnostics() -> None:
    from . import incident  # two command groups: incidents and dumps

    app.add_typer(incident.app, name="incident")
    app.add_typer(incident.dump_app, name="dump")


_register_diagnostics()
harden(app)  # every command's input is checked before it runs (ops_core/cli/validate.py)


def main() -> None:
    # errors inside commands are reported by OpsCoreGroup; this catches what happens around
    # them (settings read at start-up, Ctrl-C during parsing)
    try:
        app()
    except (Exception, KeyboardInterrupt) as exc:
        sys.exit(report_error(exc))
