"""`opscore demo`: the showcase on the embedded default, run through the production flows."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import typer

from .. import api
from .common import STATUS_STYLE, console, example, table


def _quiet_prefect() -> None:
    """Before Prefect is imported: its server's start-up banner, its console logs and its
    telemetry stay off the demo's terminal (settings read from the environment at import)."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    # (the flows log ADDM's findings as warnings for the Prefect UI: the demo prints them)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def next_steps(result: Any) -> list[tuple[str, str]]:
    """What the demo suggests at its end: (command as printed, what it shows). Every `opscore`
    command here runs as printed (tests/test_demo.py runs them)."""
    steps: list[tuple[str, str]] = []
    if result.reports:
        steps.append((f"open {Path(result.reports[0]).resolve()}", "the AWR report"))
    if result.addm is not None:
        steps.append((f"opscore addm show {result.addm.analysis_id}", "ADDM's findings"))
        steps.append(
            (
                f"opscore addm recommendations {result.addm.analysis_id} --sql-only",
                "the SQL to run, to copy",
            )
        )
    steps.append((f"opscore snapshot show {result.end_snapshot}", "top SQL of the interval"))
    steps.append(
        (
            f"opscore report awr --target {result.target} --begin {result.begin_snapshot} "
            f"--end {result.end_snapshot} --format text",
            "the AWR report in the terminal",
        )
    )
    steps.append((f"opscore ash top --target {result.target} --since 15m", "ASH top"))
    steps.append(("opscore app", "the interactive app"))
    steps.append(("opscore serve --check", "the scheduled flows `opscore serve` runs"))
    return steps


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
        prefect_ready = None
        if not check_only:
            # Prefect's temporary API server is slow to start on small machines: start it now,
            # in the background, while PostgreSQL starts and the schema loads; keep Prefect's
            # own console lines off the terminal (the runs, their logs and artifacts are in the
            # Prefect UI/API)
            _quiet_prefect()
            from flows.demo import prefect_server_in_background

            console.print("[cyan]→[/] starting Prefect's temporary API server in the background")
            prefect_ready = prefect_server_in_background()
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

        from flows.demo import run_demo

        status = console.status("Starting the flows (Prefect) ...")
        status.start()

        def say(msg: str) -> None:
            status.update(f"{msg} ...")
            console.print(f"[cyan]→[/] {msg}")

        try:
            result = run_demo(
                quick=quick,
                say=say,
                detail=lambda m: status.update(f"{m} ..."),
                prefect_ready=prefect_ready,
            )
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
        for command, comment in next_steps(result):
            line = f"  {command}"
            console.print(f"{line:<56} # {comment}" if comment else line, highlight=False)
