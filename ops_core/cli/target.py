"""`opscore target ...`: the registry of monitored servers."""

from __future__ import annotations

import typer

from .. import api
from ..targets.connection import describe
from .common import STATUS_STYLE, JsonOpt, console, example, print_json, table

app = typer.Typer(
    help="Register, list, check and remove monitored PostgreSQL servers.", no_args_is_help=True
)


@app.command(
    epilog=example(
        "opscore target add prod 'postgresql://monitor@db1.example.com:5432/app'",
        "opscore target add prod 'host=db1 user=monitor dbname=app' --password-env PROD_PGPASSWORD",
    )
)
def add(
    name: str = typer.Argument(..., help="Short unique name, e.g. prod-orders."),
    dsn: str = typer.Argument(..., help="libpq DSN (URL or key=value)."),
    password_env: str = typer.Option(
        None, "--password-env", help="Read the password from this environment variable."
    ),
    no_verify: bool = typer.Option(False, "--no-verify", help="Register without connecting first."),
    as_json: bool = JsonOpt,
) -> None:
    """Register a target. Its password is never stored in the repository: a password in the DSN
    moves to $OPSCORE_HOME/pgpass (mode 0600); or use --password-env, ~/.pgpass or a service."""
    t = api.add_target(name, dsn, password_env=password_env, verify=not no_verify)
    if as_json:
        print_json(t.as_dict())
        return
    console.print(
        f"[green]Added target[/] {t.name}: {describe(t.dsn)} (password: {t.password_source})"
    )
    console.print(f"Next: `opscore target check {t.name}`")


@app.command("list", epilog=example("opscore target list", "opscore target list --json"))
def list_(as_json: bool = JsonOpt) -> None:
    """List registered targets."""
    targets = api.list_targets()
    if as_json:
        print_json([t.as_dict() for t in targets])
        return
    if not targets:
        console.print("No targets yet: `opscore target add NAME DSN` (or `opscore demo`).")
        return
    console.print(
        table(
            "Targets",
            ["name", "connects as", "password", "tags", "added"],
            [
                (
                    t.name,
                    describe(t.dsn),
                    t.password_source,
                    _tags(t.tags),
                    t.created_at.strftime("%Y-%m-%d %H:%M"),
                )
                for t in targets
            ],
        )
    )


def _tags(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


@app.command(
    epilog=example(
        "opscore target tag prod env=prod region=eu",
        "opscore target tag prod --remove region",
        "opscore deploy --pool opscore --shard-tag env   # one shard per env",
    )
)
def tag(
    name: str = typer.Argument(..., help="Target name."),
    pairs: list[str] = typer.Argument(None, help="KEY=VALUE tags to set."),
    remove: list[str] = typer.Option(None, "--remove", help="Tag key to remove (repeatable)."),
    as_json: bool = JsonOpt,
) -> None:
    """Set or remove tags (key=value labels) of a target; the other tags stay. `opscore deploy
    --shard-tag KEY` gives each value of KEY its own shard."""
    tags: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE (e.g. env=prod).")
        tags[key] = value
    t = api.tag_target(name, tags, remove or [])
    if as_json:
        print_json({"target": t.name, "tags": t.tags})
    else:
        console.print(f"{t.name}: {_tags(t.tags) or 'no tags'}", highlight=False)


@app.command(epilog=example("opscore target remove prod"))
def remove(name: str = typer.Argument(..., help="Target name."), as_json: bool = JsonOpt) -> None:
    """Remove a target from the registry (its collected history goes with it)."""
    t = api.remove_target(name)
    if as_json:
        print_json({"removed": t.name})
    else:
        console.print(f"Removed target {t.name}.")


@app.command(epilog=example("opscore target check prod", "opscore target check prod --json"))
def check(name: str = typer.Argument(..., help="Target name."), as_json: bool = JsonOpt) -> None:
    """Connect and probe: version, pg_stat_statements, optional views, privileges, track_*."""
    res = api.check_target(name)
    caps = res.capabilities
    if as_json:
        print_json(res.as_dict())
    else:
        console.print(
            f"[bold]{res.target.name}[/]: PostgreSQL {caps.version} "
            f"({'standby' if caps.in_recovery else 'primary'}), "
            f"database {caps.database}, role {caps.user}"
        )
        console.print(
            table(
                None,
                ["check", "status", "value", "what to do"],
                [
                    (c.name, STATUS_STYLE.get(c.status, c.status), c.value, c.hint)
                    for c in caps.checks
                ],
            )
        )
        verdict = "[green]ready[/]" if res.ok else "[yellow]usable with gaps (see above)[/]"
        console.print(f"Verdict: {verdict}")
