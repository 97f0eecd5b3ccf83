"""`opscore health`: liveness, startup, readiness or the full check with a verdict."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

CHECKS = {
    "liveness": api.health_liveness,
    "startup": api.health_startup,
    "readiness": api.health_readiness,
    "full": api.health_full,
}
COLORS = {"healthy": "green", "degraded": "yellow", "failing": "red", "not available": "dim"}


def register(root: typer.Typer) -> None:
    @root.command(
        "health",
        epilog=example(
            "opscore health", "opscore health --check readiness --json", "opscore health -t prod"
        ),
    )
    def health(
        check: str = typer.Option("full", "--check", help="liveness, startup, readiness or full."),
        target: str | None = typer.Option(None, "--target", "-t", help="full: only this target."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Health with a verdict (healthy / degraded / failing) and the reason per component.
        Exit code 0 healthy, 1 failing, 2 degraded."""
        if check not in CHECKS:
            raise typer.BadParameter(f"Unknown check {check!r}; use {', '.join(CHECKS)}.")
        report = api.health_full(target) if check == "full" else CHECKS[check]()
        if as_json:
            print_json(report)
        else:
            color = COLORS[report.verdict]
            console.print(f"{check}: [bold {color}]{report.verdict}[/]")
            console.print(
                table(
                    None,
                    ["component", "status", "reason"],
                    [
                        [c.name, f"[{COLORS[c.status]}]{c.status}[/]", c.reason]
                        for c in report.components
                    ],
                )
            )
        if report.verdict != "healthy":
            raise typer.Exit(1 if report.verdict == "failing" else 2)
