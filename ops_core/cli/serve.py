"""`opscore serve`: all scheduled flows in one process."""

from __future__ import annotations

import typer

from .common import console, example


def register(root: typer.Typer) -> None:
    @root.command(
        "serve",
        epilog=example(
            "opscore serve",
            "PREFECT_API_URL=http://127.0.0.1:4200/api opscore serve --target prod",
            "OPSCORE_SNAPSHOT_CRON='*/10 * * * *' opscore serve",
        ),
    )
    def serve(
        target: list[str] = typer.Option(
            None, "--target", "-t", help="Only these targets (repeatable); default all."
        ),
        check: bool = typer.Option(
            False, "--check", help="Validate and list the deployments, then exit."
        ),
    ) -> None:
        """Run the snapshot, ASH, retention (and other) flows on their schedules in this
        process; watch them in the Prefect UI. Ctrl-C stops cleanly."""
        from flows.serve import build_deployments, serve

        deployments = build_deployments(targets=target or None)
        for d in deployments:
            sched = ", ".join(
                str(getattr(s.schedule, "interval", None) or getattr(s.schedule, "cron", ""))
                for s in d.schedules or []
            )
            console.print(f"  {d.flow_name}/{d.name}: {sched}")
        if check:
            return
        try:
            serve(targets=target or None)
        except KeyboardInterrupt:
            console.print("Stopped.")
