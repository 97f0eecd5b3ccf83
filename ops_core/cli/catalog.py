"""`opscore catalog`: every catalog operation from the registry, with its status and where it
is served (function, CLI command, app page, flow)."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table


def register(app: typer.Typer) -> None:
    @app.command(
        epilog=example(
            "opscore catalog", "opscore catalog --status not-yet", "opscore catalog --json"
        )
    )
    def catalog(
        status: str = typer.Option(
            "all", "--status", help="all, served, not-available or not-yet."
        ),
        as_json: bool = JsonOpt,
    ) -> None:
        """The operations catalog (REST-style and GraphQL rows) from the operation registry:
        served / not available: <reason> / not yet, and the function, CLI command, app page
        and flow of each."""
        want = status.replace("-", " ")
        if want not in ("all", "served", "not available", "not yet"):
            raise typer.BadParameter(
                f"{status!r} is not a status; use all, served, not-available or not-yet.",
                param_hint="--status",
            )
        ops = [op for op in api.REGISTRY if want == "all" or op.status.startswith(want)]
        if as_json:
            print_json([op.as_dict() for op in ops])
            return
        cov = api.REGISTRY.coverage()
        console.print(
            f"{cov['operations']} operations: {cov['served']} served, "
            f"{cov['not_available']} not available on PostgreSQL, {cov['not_yet']} not yet"
        )
        console.print(
            table(
                None,
                ["kind", "name", "status", "function", "writes", "cli", "app page", "flow"],
                [
                    [
                        op.kind,
                        op.name,
                        op.status.split(":")[0],  # the reason: --json and the app
                        op.function,
                        ", ".join(op.writes),
                        op.cli,
                        op.app_page,
                        op.flow,
                    ]
                    for op in ops
                ],
                drop=["flow", "app page", "writes", "kind", "cli"],
            )
        )
