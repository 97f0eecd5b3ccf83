"""`opscore ml ...`: train the anomaly model of a target, list its anomalies and models."""

from __future__ import annotations

from typing import Any

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
    database: str | None = typer.Option(
        None, "--database", help="Only this database's load (a cluster shared by several apps)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Detect (unless --stored) and list the target's anomalies, newest first."""
    df = api.ml_anomalies(target, since, severity=severity, detect=not stored, database=database)
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
        note = r.get("note")
        if isinstance(note, str) and note:  # why a score at the alert level is a warning
            moved += f" [{note.split(':')[0]}]"
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


@app.command(epilog=example("opscore ml patterns --target prod", "opscore ml patterns --json"))
def patterns(
    target: str | None = TargetOpt,
    max_clusters: int = typer.Option(6, "--max-clusters", help="At most this many (1-12)."),
    database: str | None = typer.Option(
        None, "--database", help="Only this database's statements."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Statements clustered by resource profile, each cluster with its median profile."""
    rep = api.ml_patterns(target, max_clusters=max_clusters, database=database)
    if as_json:
        print_json(rep)
        return
    console.print(
        table(
            f"Statement clusters of {rep.target} ({rep.statements} statements)",
            [
                "cluster",
                "name",
                "statements",
                "time share",
                "ms/call",
                "rows/call",
                "blocks/call",
                "write share",
                "temp/call",
            ],
            [
                (
                    c["cluster"],
                    c["name"],
                    c["statements"],
                    f"{c['time_share']:.1%}",
                    f"{c['ms_per_call']:.3g}",
                    f"{c['rows_per_call']:.3g}",
                    f"{c['blks_per_call']:.3g}",
                    f"{c['write_share']:.2f}",
                    f"{c['temp_per_call']:.3g}",
                )
                for c in rep.clusters
            ],
        )  # fmt: skip
    )
    for n in rep.notes:
        console.print(f"[yellow]- {n}[/]", highlight=False)


@app.command(epilog=example("opscore ml classify --target prod --since 2026-12-01"))
def classify(
    target: str | None = TargetOpt,
    since: str | None = typer.Option(None, "--since", help="From this UTC time (ISO 8601)."),
    database: str | None = typer.Option(
        None, "--database", help="Only this database's statements."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Each interval's workload class (oltp/reporting/batch/maintenance/mixed) and why."""
    df = api.ml_classifications(target, since, database=database)
    if as_json:
        print_json(df)
        return
    if df.empty:
        console.print("No statement history: take snapshots of a running workload.")
        return
    rows = []
    for _, r in df.iterrows():
        ev = r["evidence"]
        shares = ", ".join(f"{k} {v:.0%}" for k, v in ev.get("time_share", {}).items())
        rows.append(
            (f"{r['captured_at']:%Y-%m-%d %H:%M:%S}", r["class"], f"{r['share']:.0%}",
             ev.get("calls_per_s"), ev.get("ms_per_call"), shares)
        )  # fmt: skip
    console.print(
        table(
            "Workload classes (UTC)",
            ["interval end", "class", "share", "calls/s", "ms/call", "time share by kind"],
            rows,
        )  # fmt: skip
    )


@app.command(epilog=example("opscore ml predict --target prod --top 5 --json"))
def predict(
    target: str | None = TargetOpt,
    top: int = typer.Option(10, "--top", help="Statements, busiest first (1-100)."),
    database: str | None = typer.Option(
        None, "--database", help="Only this database's statements."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Expected mean time per call of the next interval, with a 90 % prediction interval."""
    df = api.ml_predictions(target, top=top, database=database)
    if as_json:
        print_json(df)
        return
    if df.empty:
        console.print("No statement history: take snapshots of a running workload.")
        return

    def n(v: Any) -> str:
        return "-" if v is None or v != v else f"{v:.3g}"

    rows = [
        (r["queryid"], r["intervals"], n(r["expected_ms"]),
         f"{n(r['lower_ms'])}..{n(r['upper_ms'])}", n(r["last_ms"]),
         {True: "OUTSIDE", False: "", None: "-"}[r["last_outside"]], len(r["outliers"]),
         r["note"] or (r["query"] or "")[:60])
        for _, r in df.iterrows()
    ]  # fmt: skip
    console.print(
        table(
            "Predicted mean time per call (ms)",
            [
                "queryid",
                "intervals",
                "expected",
                "interval",
                "last",
                "last vs interval",
                "past outliers",
                "statement",
            ],
            rows,
        )  # fmt: skip
    )
