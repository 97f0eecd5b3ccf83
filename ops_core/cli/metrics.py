"""`opscore metrics`: key per-target figures, their Prometheus text, and an HTTP exporter."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(help="Per-target metrics and the Prometheus exporter.")


@app.command("show", epilog=example("opscore metrics show", "opscore metrics show -t prod --json"))
def show(
    target: str | None = typer.Option(None, "--target", "-t", help="Only this target."),
    as_json: bool = JsonOpt,
) -> None:
    """Key figures of every target now (and what the server cannot give, with why)."""
    ms = api.target_metrics(target)
    if as_json:
        print_json(ms)
        return
    for m in ms:
        rows = [[k, "-" if v is None else f"{v:.6g}"] for k, v in m.values.items()]
        rows += [[k, f"not available: {why}"] for k, why in m.unavailable.items()]
        console.print(
            table(
                f"{m.target}" + ("" if m.up else f" (DOWN: {m.error})"), ["metric", "value"], rows
            )
        )


@app.command(
    "prometheus",
    epilog=example("opscore metrics prometheus", "opscore metrics prometheus --target prod"),
)
def prometheus(
    target: str | None = typer.Option(None, "--target", "-t", help="Only this target."),
) -> None:
    """Print the Prometheus text exposition."""
    typer.echo(api.prometheus_metrics(target), nl=False)


@app.command(
    "serve",
    epilog=example(
        "opscore metrics serve --port 9187", "opscore metrics serve --port 9187 --host 0.0.0.0"
    ),
)
def serve(
    port: int = typer.Option(9187, "--port", "-p", min=1, max=65535),
    host: str = typer.Option("127.0.0.1", "--host", help="Listen address (default: local only)."),
    target: str | None = typer.Option(None, "--target", "-t", help="Only this target."),
) -> None:
    """Serve /metrics for Prometheus (each scrape reads the targets afresh). Ctrl-C stops."""
    from prometheus_client import start_http_server

    registry = api.prometheus_registry(target)
    server, thread = start_http_server(port, addr=host, registry=registry)
    console.print(f"Serving Prometheus metrics on http://{host}:{port}/metrics (Ctrl-C stops)")
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
        console.print("Stopped.")
