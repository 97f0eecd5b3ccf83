"""`opscore addm ...`: automatic diagnosis of a snapshot range, ranked by DB time."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.panel import Panel

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(
    help="ADDM: diagnose a snapshot range (findings ranked by share of DB time).",
    no_args_is_help=True,
)

TargetOpt = typer.Option(
    None, "--target", "-t", help="Target name (default: the only target, or 'demo')."
)
IdArg = typer.Argument(..., help="Analysis id (see `opscore addm list`).")


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.1f} %"


def _render(a: api.AddmAnalysis, findings_only: bool = False) -> None:
    if not findings_only:
        console.print(
            f"[bold]ADDM analysis {a.analysis_id}[/] of [bold]{a.target}[/]"
            f"{' (database ' + a.database + ')' if a.database else ''}: snapshots "
            f"{a.begin_snapshot_id}..{a.end_snapshot_id}, {a.begin_at:%Y-%m-%d %H:%M:%S} - "
            f"{a.end_at:%H:%M:%S} UTC ({a.elapsed_s:.0f} s)"
        )
        src = "ASH" if a.db_time_source == "ash" else "pg_stat_statements (no ASH)"
        aas = a.db_time_s / a.elapsed_s if a.elapsed_s > 0 else 0.0
        console.print(
            f"DB time {a.db_time_s:.1f} s from {src}, {aas:.2f} average active sessions; "
            f"pg_stat_statements time {a.pgss_time_s:.1f} s; {a.ash_samples} ASH samples; "
            f"threshold {a.min_impact_pct:g} %"
        )
        for n in a.notes:
            console.print(f"[dim]- {n}[/]", highlight=False)
        wc = a.breakdown.get("wait_class") or []
        if wc:
            console.print(
                table(
                    "DB time by wait class",
                    ["class", "DB time s", "%"],
                    [(r["wait_class"], f"{r['db_time_s']:.1f}", _pct(r["pct"])) for r in wc],
                    {"DB time s": "right", "%": "right"},
                )
            )
    for f in a.findings:
        style = (
            "green"
            if f.type == "nothing_significant"
            else ("blue" if f.type == "top_sql" else "red")
        )
        impact = (
            f"risk {f.risk_pct:.0f} % of capacity"
            if f.basis == "risk"
            else f"{f.impact_db_time_s:.1f} s = {f.impact_pct:.1f} % of DB time"
        )
        lines = [f"[bold]{f.title}[/]", f"impact: {impact}; basis: {f.basis}"]
        if f.cause:
            lines.insert(0, f"↳ symptom of #{f.cause} ({f.evidence.get('caused_by')})")
        if f.objects:
            lines.append("objects: " + ", ".join(f.objects))
        if f.sessions:
            lines.append("sessions: " + ", ".join(str(s) for s in f.sessions))
        for s in f.statements[:3]:
            q = " ".join((s.get("query") or "").split())[:160]
            lines.append(f"SQL {s.get('queryid') or ''}: {q}")
        for k, v in f.evidence.items():
            if k != "per_statement":
                lines.append(f"[dim]{k}: {v}[/]")
        console.print(
            Panel(
                "\n".join(lines),
                title=f"#{f.rank} {f.type}" + (f" ↳ of #{f.cause}" if f.cause else ""),
                border_style=style,
            ),
            highlight=False,
        )
        for r in f.recommendations:
            _print_action(r.action_type, r.action, r.benefit_pct, r.rationale)


def _print_action(kind: str, action: str, benefit: float | None, why: str) -> None:
    """A recommendation below its finding's box: the action on its own line(s), never broken
    by opscore (soft wrap: the terminal folds a long line, a copy gets it whole)."""
    ben = f" (benefit up to {_pct(benefit)})" if benefit else ""
    console.print(f"  [yellow]→ {kind}{ben}:[/]", highlight=False)
    console.print(escape(action), soft_wrap=True, highlight=False)
    if why:
        console.print(f"    [dim]{escape(why)}[/]", highlight=False)


@app.command(
    epilog=example(
        "opscore addm run",
        "opscore addm run --target prod --begin 120 --end 124",
        "opscore addm run --target demo --database shop --min-impact 2 --json",
    )
)
def run(
    target: str = TargetOpt,
    begin: int = typer.Option(None, "--begin", help="Begin snapshot id (default: last interval)."),
    end: int = typer.Option(None, "--end", help="End snapshot id."),
    database: str = typer.Option(None, "--database", help="Only this database (default: all)."),
    min_impact: float = typer.Option(
        None, "--min-impact", help="Omit findings below this % of DB time (default 5)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Analyse a snapshot range (ASH samples inside it give DB time by wait) and store it."""
    with console.status("Running ADDM ..."):
        a = api.run_addm(target, begin, end, database=database, min_impact_pct=min_impact)
    if as_json:
        print_json(a.as_dict())
        return
    _render(a)


@app.command("list", epilog=example("opscore addm list", "opscore addm list --target prod --json"))
def list_(target: str = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Stored analyses, newest first."""
    rows = api.list_addm(target)
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    console.print(
        table(
            "ADDM analyses",
            [
                "id",
                "target",
                "snapshots",
                "begin (UTC)",
                "seconds",
                "DB time s",
                "source",
                "top finding",
            ],
            [
                (
                    a.analysis_id,
                    a.target,
                    f"{a.begin_snapshot_id}..{a.end_snapshot_id}",
                    f"{a.begin_at:%Y-%m-%d %H:%M:%S}",
                    f"{a.elapsed_s:.0f}",
                    f"{a.db_time_s:.1f}",
                    a.db_time_source,
                    a.top_finding,
                )
                for a in rows
            ],
        )
    )


@app.command(epilog=example("opscore addm show 3", "opscore addm show 3 --json"))
def show(analysis_id: int = IdArg, as_json: bool = JsonOpt) -> None:
    """One analysis: DB time, breakdown and its findings with recommendations."""
    a = api.get_addm(analysis_id)
    if as_json:
        print_json(a.as_dict())
        return
    _render(a)


@app.command(epilog=example("opscore addm findings 3", "opscore addm findings 3 --json"))
def findings(analysis_id: int = IdArg, as_json: bool = JsonOpt) -> None:
    """The findings of an analysis, ranked."""
    fs = api.addm_findings(analysis_id)
    if as_json:
        print_json([f.as_dict() for f in fs])
        return
    console.print(
        table(
            f"Findings of analysis {analysis_id}",
            ["#", "type", "impact", "DB time s", "title"],
            [
                (
                    f.rank,
                    f.type,
                    _pct(f.risk_pct if f.basis == "risk" else f.impact_pct),
                    f"{f.impact_db_time_s:.1f}",
                    f.title,
                )
                for f in fs
            ],
        )
    )


@app.command(
    epilog=example(
        "opscore addm recommendations 3",
        "opscore addm recommendations 3 --sql-only > fix.sql",
        "opscore addm recommendations 3 --json",
    )
)
def recommendations(
    analysis_id: int = IdArg,
    sql_only: bool = typer.Option(
        False,
        "--sql-only",
        help="Only the SQL statements, each whole on its own line(s), as a script to review "
        "and run (a comment above each names its finding).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Every recommendation of an analysis: the exact action and its expected benefit."""
    recs = api.addm_recommendations(analysis_id)
    if as_json:
        print_json(recs)
        return
    if sql_only:
        for r in recs:
            if r["action"].rstrip().endswith(";"):
                typer.echo(f"-- #{r['finding_rank']} {r['finding_type']} ({r['action_type']})")
                typer.echo(r["action"])
        return
    console.print(f"[bold]Recommendations of analysis {analysis_id}[/]")
    for r in recs:
        console.print(f"[bold]#{r['finding_rank']} {r['finding_type']}[/]", highlight=False)
        _print_action(r["action_type"], r["action"], r["benefit_pct"], r["rationale"])


@app.command(epilog=example("opscore addm delete 3"))
def delete(analysis_id: int = IdArg, as_json: bool = JsonOpt) -> None:
    """Delete a stored analysis (its findings and recommendations with it)."""
    a = api.delete_addm(analysis_id)
    if as_json:
        print_json(a.as_dict())
        return
    console.print(f"Deleted ADDM analysis {a.analysis_id} of {a.target}.")
