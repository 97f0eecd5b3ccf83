"""`opscore db ...`: the embedded PostgreSQL."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json

app = typer.Typer(help="Start, stop and inspect the embedded PostgreSQL 18.", no_args_is_help=True)


def _show(st, as_json: bool) -> None:
    if as_json:
        print_json(st.as_dict())
        return
    color = "green" if st.running else "yellow"
    console.print(f"[{color}]{st.detail}[/]  data={st.pgdata}")
    if st.running:
        console.print(
            f"pid {st.pid}, port {st.port} on 127.0.0.1, socket {st.socket_dir}, "
            f"PostgreSQL {st.version}"
        )
    console.print(f"log: {st.log_file}")


@app.command(epilog=example("opscore db start", "opscore db start --json"))
def start(as_json: bool = JsonOpt) -> None:
    """Start the embedded server (initialize it on first use; reuse it if it already runs)."""
    _show(api.db_start(), as_json)


@app.command(epilog=example("opscore db stop"))
def stop(as_json: bool = JsonOpt) -> None:
    """Stop the embedded server (fast shutdown). Stopping a stopped server is not an error."""
    _show(api.db_stop(), as_json)


@app.command(epilog=example("opscore db status", "opscore db status --json"))
def status(as_json: bool = JsonOpt) -> None:
    """Show whether the embedded server runs, where, and on which port."""
    st = api.db_status()
    _show(st, as_json)
    if not st.running:
        raise typer.Exit(3)


@app.command(
    epilog=example(
        "opscore db url", 'psql "$(opscore db url --database opscore)"', "opscore db url --tcp"
    )
)
def url(
    database: str = typer.Option("postgres", "--database", "-d", help="Database name."),
    tcp: bool = typer.Option(False, "--tcp", help="TCP URL on 127.0.0.1 (password via passfile)"),
) -> None:
    """Print the connection URL of the embedded server (never contains a password)."""
    st = api.db_status()
    if not st.initialized:
        from ..errors import EmbeddedServerError

        raise EmbeddedServerError(
            "The embedded server is not initialized yet.", "Run `opscore db start` first."
        )
    typer.echo(api.db_url(database, tcp=tcp))
