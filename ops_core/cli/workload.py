"""`opscore workload ...`: drive real load and inject real faults (writes to the target)."""

from __future__ import annotations

import signal
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .. import api
from ..errors import InvalidInput
from ..workload.driver import PgbenchResult
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(
    help="Run workloads (pgbench, a generated shop mix) and inject faults on a target you own.",
    no_args_is_help=True,
)

TargetOpt = typer.Option(None, "--target", "-t", help="Registered target to load (it must write).")
DsnOpt = typer.Option(None, "--dsn", help="Or a libpq DSN of a role that may write.")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _params(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise InvalidInput(f"--param {item!r} is not key=value.", "Example: --param sessions=8")
        try:
            out[key] = int(value)
        except ValueError:
            out[key] = value
    return out


@app.command(
    epilog=example(
        "opscore workload run --target demo --kind shop --duration 30 --clients 4",
        "opscore workload run --dsn 'dbname=bench' --kind pgbench --duration 60 --rate 500",
    )
)
def run(
    target: str = TargetOpt,
    dsn: str = DsnOpt,
    kind: str = typer.Option("shop", "--kind", help="shop (generated OLTP mix) or pgbench."),
    duration: float = typer.Option(10, "--duration", help="Seconds."),
    clients: int = typer.Option(2, "--clients", "-c", help="Concurrent sessions."),
    scale: int = typer.Option(1, "--scale", help="Data size if it must be created."),
    rate: float = typer.Option(None, "--rate", help="pgbench: throttle to this many TPS."),
    seed: int = typer.Option(1, "--seed", help="shop: random seed."),
    as_json: bool = JsonOpt,
) -> None:
    """Run real load for a duration and report what ran (sessions are named demo-app)."""
    with _progress() as prog:
        task = prog.add_task(f"{kind} workload", total=duration, status="starting")

        def on_progress(p: Any) -> None:
            if hasattr(p, "tps"):
                status = f"{p.tps:,.0f} tps, {p.latency_ms:.2f} ms"
            else:
                status = f"{p.operations:,} operations, {p.errors} errors"
            prog.update(task, completed=min(p.elapsed_s, duration), status=status)

        res = api.run_workload(
            target, dsn=dsn, kind=kind, duration_s=duration, clients=clients, scale=scale,
            rate=rate, seed=seed, on_progress=None if as_json else on_progress,
        )  # fmt: skip
    if as_json:
        print_json(res.as_dict())
        return
    if isinstance(res, PgbenchResult):
        console.print(
            f"pgbench: {res.transactions:,} transactions in {res.duration_s:.0f} s, "
            f"{res.tps:,.1f} tps, latency {res.latency_avg_ms} ms, failed {res.failed}"
        )
        return
    console.print(
        table(
            f"shop workload: {res.clients} clients, {res.duration_s} s",
            ["operation", "ran", "errors"],
            [(k, v, res.errors.get(k, 0)) for k, v in res.operations.items()],
            justify={"ran": "right", "errors": "right"},
        )
    )
    console.print(f"{res.statements:,} SQL statements, {res.orders_created:,} orders created.")


@app.command("faults", epilog=example("opscore workload faults", "opscore workload faults --json"))
def list_faults(as_json: bool = JsonOpt) -> None:
    """List the fault injectors."""
    specs = api.list_faults()
    if as_json:
        print_json([s.as_dict() for s in specs])
        return
    console.print(
        table(
            "Fault injectors",
            ["name", "what", "server-wide"],
            [
                (s.name, s.description, "yes" if s.server_wide else s.server_wide_when)
                for s in specs
            ],
        )
    )


@app.command(
    epilog=example(
        "opscore workload fault idle_in_transaction --target demo --duration 30",
        "opscore workload fault checkpoint_pressure --target demo --duration 60 "
        "--allow-server-changes",
        "opscore workload fault connection_storm --target demo --param sessions=40",
    )
)
def fault(
    name: str = typer.Argument(..., help="Fault name (see `opscore workload faults`)."),
    target: str = TargetOpt,
    dsn: str = DsnOpt,
    duration: float = typer.Option(10, "--duration", help="Seconds to hold the fault."),
    allow_server_changes: bool = typer.Option(
        False,
        "--allow-server-changes",
        help="Permit server-wide changes (ALTER SYSTEM, restart, filling max_connections).",
    ),
    param: list[str] = typer.Option([], "--param", help="Fault parameter key=value."),
    with_load: int = typer.Option(
        0, "--with-load", help="Also run the shop mix on this many sessions around the fault."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Inject one real problem for a duration, then undo it; print what it did."""
    # a plain `kill` must unwind the fault (restore settings) like Ctrl-C does
    signal.signal(signal.SIGTERM, _terminate)
    with _progress() as prog:
        task = prog.add_task(f"fault {name}", total=duration, status="starting")

        def on_progress(elapsed: float, activity: list[dict]) -> None:
            waiting = sum(1 for a in activity if a["wait_event_type"] == "Lock")
            active = sum(1 for a in activity if a["state"] == "active")
            prog.update(
                task,
                completed=min(elapsed, duration),
                status=f"{len(activity)} sessions, {active} active, {waiting} waiting on locks",
            )

        run = api.inject_fault(
            name, target, dsn=dsn, duration_s=duration,
            allow_server_changes=allow_server_changes, background_clients=with_load,
            on_progress=None if as_json else on_progress, **_params(param),
        )  # fmt: skip
    if as_json:
        print_json(run.as_dict())
        return
    info = run.info
    console.print(f"[bold]{info.name}[/]: {info.description} (database {info.database})")
    rows = [
        ("objects", ", ".join(info.objects)),
        ("sessions", "; ".join(f"{r}: {p}" for r, p in info.roles.items())),
        ("statements", "\n".join(info.statements)),
        ("settings", "; ".join(f"{k} = {v['value']} ({v['scope']})"
                               for k, v in info.settings.items())),
        ("ran", ", ".join(f"{k} {v}" for k, v in info.counts.items())),
        ("notes", "\n".join(info.notes)),
        ("undone", "\n".join(info.cleanup)),
    ]  # fmt: skip
    console.print(table(None, ["", ""], [r for r in rows if r[1]]))
    if run.load is not None:
        console.print(
            f"Background shop load: {run.load.total_operations:,} operations on "
            f"{run.load.clients} sessions, {sum(run.load.errors.values())} errors."
        )
