"""`opscore capacity ...`: forecasts with days_until each limit, exhaustion alerts, storage
growth, maintenance windows."""

from __future__ import annotations

from typing import Any

import pandas as pd
import typer

from .. import api
from ..model.formats import fmt_bytes
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(
    help="Capacity planning: forecasts, alerts, storage growth, windows.", no_args_is_help=True
)

TargetOpt = typer.Option(
    None, "--target", "-t", help="Target name (default: the only target, or 'demo')."
)
HorizonOpt = typer.Option(30.0, "--horizon-days", help="Forecast horizon in days (1-366).")


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if unit == "bytes":
        return f"{v / 1e9:.2f} GB"
    return f"{v:.3g}"


def _band(mean: float | None, lo: float | None, hi: float | None, unit: str) -> str:
    return f"{_num(mean, unit)} [{_num(lo, unit)}, {_num(hi, unit)}]"


@app.command(
    epilog=example("opscore capacity forecast --target prod", "opscore capacity forecast --json")
)
def forecast(
    target: str | None = TargetOpt, horizon_days: float = HorizonOpt, as_json: bool = JsonOpt
) -> None:
    """Forecasts with their interval and days until each limit (null: none in sight)."""
    rep = api.capacity_forecasts(target, horizon_days=horizon_days)
    if as_json:
        print_json(rep)
        return
    rows = []
    for f in rep.forecasts:
        end = f.frame.iloc[-1] if not f.frame.empty else None
        rows.append(
            (
                f.metric,
                f.unit,
                _num(f.last_value, f.unit),
                "-" if end is None else _band(end["mean"], end["lower"], end["upper"], f.unit),
                _num(f.limit, f.unit),
                "-" if f.days_until is None else f"{f.days_until:g}",
                f.method,
                "; ".join(f.notes),
            )
        )
    console.print(
        table(
            f"Capacity of {rep.target}, {rep.horizon_days:g} days ahead (95 % interval)",
            ["metric", "unit", "now", "at horizon", "limit", "days until", "method", "notes"],
            rows,
        )
    )
    for n in rep.not_captured:
        console.print(f"[dim]- not forecast: {n}[/]", highlight=False)


@app.command(epilog=example("opscore capacity alerts --target prod --within-days 14"))
def alerts(
    target: str | None = TargetOpt,
    within_days: float = typer.Option(30.0, "--within-days", help="Look-ahead in days."),
    as_json: bool = JsonOpt,
) -> None:
    """Resource-exhaustion alerts: limits the forecast (or its upper bound) reaches soon."""
    df = api.capacity_alerts(target, within_days=within_days)
    if as_json:
        print_json(df)
        return
    if df.empty:
        console.print(f"No limit is reached within {within_days:g} days.")
        return
    console.print(table("Exhaustion alerts", list(df.columns), df.itertuples(index=False)))


@app.command(
    epilog=example(
        "opscore capacity storage --target prod",
        "opscore capacity storage --by table --limit 20",
    )
)
def storage(
    target: str | None = TargetOpt,
    horizon_days: float = HorizonOpt,
    by: str = typer.Option(
        "database", "--by", help="database, or table (the fastest-growing tables)."
    ),
    limit: int = typer.Option(10, "--limit", help="Tables shown with --by table (1-1000)."),
    as_json: bool = JsonOpt,
) -> None:
    """Storage growth per database or table, the forecast size at the horizon, and the days
    until that growth alone fills the filesystem's free space."""
    df = api.storage_growth(target, horizon_days=horizon_days, by=by, limit=limit)
    if as_json:
        print_json(df)
        return
    tables = "relname" in df.columns
    if df.empty:
        console.print(df.attrs["empty_note"])
        return
    rows = [
        (
            f"{r.datname}: {r.schemaname}.{r.relname}" if tables else r.datname,
            fmt_bytes(r.size_bytes),
            fmt_bytes(r.growth_bytes_per_day),
            "-" if pd.isna(r.share_of_growth_pct) else f"{r.share_of_growth_pct:.0f} %",
            " ".join(fmt_bytes(v) for v in (r.forecast_bytes, r.forecast_lower, r.forecast_upper)),
            "-" if pd.isna(r.days_until_full) else f"{r.days_until_full:,.0f}",
            r.method,
        )
        for r in df.itertuples()
    ]
    free = df.attrs.get("free_bytes")
    caption = (
        f"free space of the data directory's filesystem: {fmt_bytes(free)}"
        if free is not None
        else df.attrs.get("note")
    )
    console.print(
        table(
            f"Storage growth by {'table' if tables else 'database'}, {horizon_days:g} days ahead",
            [
                "table" if tables else "database",
                "size",
                "growth/day",
                "share",
                "forecast [95 % interval]",
                "days until full",
                "method",
            ],
            rows,
            drop=["method", "forecast [95 % interval]", "share"],
        )
    )
    if caption:
        console.print(caption)


def show_windows(w: Any, as_json: bool) -> None:
    if as_json:
        print_json(w)
        return
    console.print(w.note)
    if w.windows:
        console.print(
            table(
                "Maintenance windows (quietest first)",
                ["window", "mean AAS", "peak AAS", "weeks", "confidence"],
                [
                    (
                        x["window"],
                        x["mean_aas"],
                        x["peak_aas"],
                        x["weeks_observed"],
                        x["confidence"],
                    )
                    for x in w.windows
                ],
            )
        )


@app.command(epilog=example("opscore capacity windows --target prod --hours 2 --json"))
def windows(
    target: str | None = TargetOpt,
    hours: int = typer.Option(1, "--hours", help="Window length in hours (1-24)."),
    top: int = typer.Option(3, "--top", help="How many windows (1-20)."),
    as_json: bool = JsonOpt,
) -> None:
    """The recurring hour-of-week slots with least DB time, with a confidence."""
    show_windows(api.maintenance_windows(target, hours=hours, top=top), as_json)


@app.command(
    "response-time",
    epilog=example("opscore capacity response-time --target prod --top 5 --horizon-days 7"),
)
def response_time(
    target: str | None = TargetOpt,
    horizon_days: float = typer.Option(7.0, "--horizon-days", help="Horizon in days (1-366)."),
    top: int = typer.Option(5, "--top", help="Statements, busiest first (1-50)."),
    as_json: bool = JsonOpt,
) -> None:
    """Mean time per call of the top statements, forecast with a 95 % interval."""
    fcs = api.response_time_forecasts(target, horizon_days=horizon_days, top=top)
    if as_json:
        print_json(fcs)
        return
    if not fcs:
        console.print("No statement history: take snapshots of a running workload.")
        return
    rows = []
    for f in fcs:
        end = f.frame.iloc[-1] if not f.frame.empty else None
        rows.append(
            (
                f.metric.split(":", 1)[1],
                _num(f.last_value),
                "-" if end is None else _band(end["mean"], end["lower"], end["upper"], "ms"),
                f.method,
                "; ".join(f.notes),
            )
        )
    console.print(
        table(
            f"Response time (ms per call), {horizon_days:g} days ahead",
            ["queryid", "now", "at horizon", "method", "notes"],
            rows,
        )
    )
