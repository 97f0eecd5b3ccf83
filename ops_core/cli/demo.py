"""`opscore demo`: the showcase on the embedded default, run through the production flows."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from .. import api
from .common import STATUS_STYLE, console, example, table


def register(app: typer.Typer) -> None:
    @app.command(epilog=example("opscore demo", "opscore demo --quick"))
    def demo(
        quick: bool = typer.Option(False, "--quick", help="A short run (about a minute)."),
        check_only: bool = typer.Option(
            False, "--check-only", help="Only start the server and check the target."
        ),
    ) -> None:
        """Start the embedded PostgreSQL 18, register it as target `demo`, run a realistic load
        with two injected problems through the snapshot and ASH flows, then say what to open."""
        t0 = time.monotonic()
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
        gaps = [c for c in res.capabilities.checks if c.status in ("warn", "missing")]
        console.print(
            f"[green]✓[/] target check: PostgreSQL {res.capabilities.version}, "
            f"{len(res.capabilities.checks) - len(gaps)} checks ok"
        )
        if gaps:
            console.print(
                table(
                    "gaps",
                    ["check", "status", "value"],
                    [(c.name, STATUS_STYLE.get(c.status, c.status), c.value) for c in gaps],
                )
            )
        if check_only:
            return

        # Prefect's ephemeral API server is slow to start on small machines; keep its console
        # logs quiet here (the runs, their logs and artifacts are in the Prefect UI/API)
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        from flows.demo import run_demo

        status = console.status("Starting the flows (Prefect) ...")
        status.start()

        def say(msg: str) -> None:
            status.update(f"{msg} ...")
            console.print(f"[cyan]→[/] {msg}")

        try:
            result = run_demo(quick=quick, say=say)
        finally:
            status.stop()
        console.print(
            f"[green]✓[/] snapshots {result.begin_snapshot} → {result.end_snapshot}; "
            f"ASH {result.ash.get('samples', 0)} samples, "
            f"{result.ash.get('rows_written', 0)} session rows"
        )
        if result.addm is not None:
            a = result.addm
            console.print(
                f"[green]✓[/] ADDM analysis {a.analysis_id}: DB time {a.db_time_s:.1f} s "
                f"({a.ash_samples} ASH samples)"
            )
            rows = [
                (
                    f.rank,
                    f"{f.impact_pct:.1f} %",
                    f.title,
                    f.recommendations[0].action if f.recommendations else "",
                )
                for f in a.findings[:6]
            ]
            if rows:
                console.print(
                    table(
                        "ADDM findings (by share of DB time)",
                        ["#", "impact", "finding", "first action"],
                        rows,
                    )
                )
        for n in result.named:
            f = n["finding"]
            found = (
                f"[green]named by ADDM: #{f.rank} {f.type}, {f.score:.1f} % of DB time[/]"
                if f is not None
                else "[red]not named by ADDM[/]"
            )
            console.print(f"  injected {n['fault']} ({n['label']}) → {found}", highlight=False)
        for path in result.reports:
            console.print(f"[green]✓[/] report: {Path(path).resolve()}")
        console.print(f"Done in {time.monotonic() - t0:.0f} s. Next:")
        if result.reports:
            console.print(f"  open {Path(result.reports[0]).resolve()}")
        if result.addm is not None:
            console.print(f"  opscore addm show {result.addm.analysis_id}")
        console.print(f"  opscore snapshot show {result.end_snapshot}")
        console.print(
            f"  opscore snapshot compare --target demo --begin "
            f"{result.begin_snapshot} --end {result.end_snapshot}"
        )
        console.print("  opscore ash top --target demo --since 15m")
        console.print("  opscore app                      # the interactive app")
        console.print(
            "  prefect server start             # the flow runs, with PREFECT_API_URL set "
            "for `opscore serve`"
        )
