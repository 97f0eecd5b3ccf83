"""`opscore demo`: the showcase on the embedded default."""

from __future__ import annotations

import typer

from .. import api
from .common import STATUS_STYLE, console, example, table


def register(app: typer.Typer) -> None:
    @app.command(epilog=example("opscore demo"))
    def demo() -> None:
        """Start the embedded PostgreSQL 18, create the repository, register it as target
        `demo` and check it."""
        with console.status("Starting the embedded PostgreSQL 18 ..."):
            st = api.db_start()
        console.print(
            f"[green]✓[/] embedded PostgreSQL {st.version} on 127.0.0.1:{st.port} "
            f"(data {st.pgdata})"
        )
        with console.status("Creating the repository and the demo target ..."):
            info = api.init_repository()
            target = api.ensure_demo_target()
        console.print(
            f"[green]✓[/] repository schema version {info.schema_version}; "
            f"target [bold]{target.name}[/] registered"
        )
        res = api.check_target(target.name)
        console.print(
            table(
                f"target check {target.name}",
                ["check", "status", "value"],
                [
                    (c.name, STATUS_STYLE.get(c.status, c.status), c.value)
                    for c in res.capabilities.checks
                ],
            )
        )
        console.print("Next: `opscore target list`, `opscore db url`.")
