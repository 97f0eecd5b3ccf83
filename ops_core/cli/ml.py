"""`opscore ml ...`: train the anomaly model of a target, list its anomalies and models."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(help="Workload ML: anomaly models and detected anomalies.", no_args_is_help=True)

TargetOpt = typer.Option(
    None, "--target", "-t", help="Target name (default: the only target, or 'demo')."
)


@app.command(epilog=example("opscore ml train --target prod", "opscore ml train --json"))
def train(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Fit the target's anomaly model on its snapshot history (the previous version is kept)."""
    m = api.train_ml(target)
    if as_json:
        print_json(m)
        return
    console.print(
        f"Model v{m.version} of [bold]{m.target}[/] ({m.status}): {m.points} intervals"
        + (
            ""
            if m.data_begin is None or m.data_end is None
            else f" from {m.data_begin:%Y-%m-%d %H:%M} to {m.data_end:%Y-%m-%d %H:%M} UTC"
        )
        + f"; saved to {m.path}"
    )
    methods = sorted(set(m.methods.values()))
    if methods:
        console.print(
            f"methods: {', '.join(methods)}; validation: "
            f"alert rate {m.validation.get('alert_rate')} on the training history"
        )
    for n in m.notes:
        console.print(f"[yellow]- {n}[/]", highlight=False)


@app.command(
    epilog=example(
        "opscore ml anomalies --target prod --since 2026-12-01",
        "opscore ml anomalies --stored --json",
    )
)
def anomalies(
    target: str | None = TargetOpt,
    since: str | None = typer.Option(None, "--since", help="From this UTC time (ISO 8601)."),
    severity: str | None = typer.Option(None, "--severity", help="alert or warning."),
    stored: bool = typer.Option(False, "--stored", help="Only read stored anomalies."),
    as_json: bool = JsonOpt,
) -> None:
    """Detect (unless --stored) and list the target's anomalies, newest first."""
    df = api.ml_anomalies(target, since, severity=severity, detect=not stored)
    if as_json:
        print_json(df)
        return
    if df.empty:
        console.print("No anomalies.")
        return
    rows = []
    for _, r in df.iterrows():
        moved = "; ".join(
            f"{m['metric']} {m['value']:.3g} (expected {m['low']:.3g}..{m['high']:.3g})"
            for m in r["metrics"][:3]
            if m["value"] is not None and m["low"] is not None
        )
        rows.append(
            (
                r["anomaly_id"],
                f"{r['begin_at']:%Y-%m-%d %H:%M}",
                f"{r['end_at']:%H:%M}",
                r["severity"],
                f"{r['score']:.1f}",
                moved,
                ""
                if r["addm_analysis_id"] is None or r["addm_analysis_id"] != r["addm_analysis_id"]
                else int(r["addm_analysis_id"]),
            )
        )
    console.print(
        table("Anomalies (UTC)", ["id", "begin", "end", "severity", "z", "detail", "ADDM"], rows)
    )


@app.command(epilog=example("opscore ml models --target prod"))
def models(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Stored model versions (active, previous for rollback, retired)."""
    ms = api.ml_models(target)
    if as_json:
        print_json(ms)
        return
    console.print(
        table(
            "Models",
            ["version", "status", "trained", "points", "enough history"],
            [
                (m.version, m.status, f"{m.trained_at:%Y-%m-%d %H:%M}", m.points, m.enough_history)
                for m in ms
            ],
        )
    )


@app.command(epilog=example("opscore ml windows --target prod --hours 2"))
def windows(
    target: str | None = TargetOpt,
    hours: int = typer.Option(1, "--hours", help="Window length in hours (1-24)."),
    as_json: bool = JsonOpt,
) -> None:
    """Maintenance windows (same as `opscore capacity windows`)."""
    from .capacity import show_windows

    show_windows(api.maintenance_windows(target, hours=hours), as_json)
