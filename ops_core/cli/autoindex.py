"""`opscore autonomous indexing ...`: auto-indexing's config, candidates, a cycle, and the
indexes it recommended, created and dropped."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

indexing_app = typer.Typer(
    help="Auto-indexing: candidates from the workload, builds verified by execution, drops.",
    no_args_is_help=True,
)
config_app = typer.Typer(help="Auto-indexing's mode and settings.", no_args_is_help=True)
indexing_app.add_typer(config_app, name="config")

TargetOpt = typer.Option(
    None, "--target", "-t", help="Target name (default: the only target, or the embedded one)."
)
HoursOpt = typer.Option(24.0, "--hours", min=0.01, help="Learn the workload from this many hours.")
LimitOpt = typer.Option(50, "--limit", min=1, max=10000)


def _target(name: str | None) -> str:
    return api.resolve_target(name).name


def _print_config(c: api.IndexingConfig) -> None:
    window = (
        f"{c.window_start_hour}-{c.window_end_hour} h UTC"
        if c.window_start_hour is not None
        else "any time"
    )
    console.print(
        f"[bold]{c.target}[/]: auto-indexing {c.mode}; budget {c.budget_mb:g} MB, "
        f"{c.max_builds} build(s) per cycle, window {window}, validation "
        f"{c.validation_hours:g} h, unused after {c.unused_days:g} days, minimum gain "
        f"{c.min_gain_pct:g} %, costing on "
        + (f"clone {c.clone} (without hypopg)" if c.clone else "hypopg or an estimate"),
        highlight=False,
    )


@config_app.command("show", epilog=example("opscore autonomous indexing config show -t prod"))
def config_show(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Auto-indexing's mode and settings."""
    c = api.indexing_config(_target(target))
    if as_json:
        print_json(c)
        return
    _print_config(c)


@config_app.command(
    "set",
    epilog=example(
        "opscore autonomous indexing config set -t prod --mode report-only --budget-mb 512",
        "opscore autonomous indexing config set -t prod --window-start 2 --window-end 5",
    ),
)
def config_set(
    target: str | None = TargetOpt,
    mode: str | None = typer.Option(None, "--mode", help="off, report-only or implement."),
    budget_mb: float | None = typer.Option(None, "--budget-mb", help="Storage for new indexes."),
    max_builds: int | None = typer.Option(None, "--max-builds", help="Builds per cycle (1-20)."),
    window_start: int | None = typer.Option(None, "--window-start", help="UTC hour 0-23."),
    window_end: int | None = typer.Option(None, "--window-end", help="UTC hour 0-23."),
    no_window: bool = typer.Option(False, "--no-window", help="Build at any time."),
    validation_hours: float | None = typer.Option(None, "--validation-hours"),
    unused_days: float | None = typer.Option(None, "--unused-days"),
    min_gain_pct: float | None = typer.Option(None, "--min-gain-pct"),
    clone: str | None = typer.Option(
        None, "--clone", help="Clone to cost candidates on when there is no hypopg."
    ),
    no_clone: bool = typer.Option(False, "--no-clone", help="Estimate without hypopg."),
    as_json: bool = JsonOpt,
) -> None:
    """Change the mode or settings (what is not given stays)."""
    c = api.set_indexing_config(
        _target(target), mode=mode, budget_mb=budget_mb, max_builds=max_builds,
        window_start_hour=window_start, window_end_hour=window_end, clear_window=no_window,
        validation_hours=validation_hours, unused_days=unused_days, min_gain_pct=min_gain_pct,
        clone=clone, clear_clone=no_clone, by="cli",
    )  # fmt: skip
    if as_json:
        print_json(c)
        return
    _print_config(c)


def _print_candidates(c: api.IndexingCandidates) -> None:
    console.print(
        table(
            f"Index candidates of {c.target} (snapshots {c.begin_id}-{c.end_id}, "
            f"{c.statements} read statements, costed by {c.method})",
            ["chosen", "index", "saved ms", "writes ms", "size MB", "verdict"],
            [
                [
                    "yes" if x.chosen else "",
                    f"{x.schema_name}.{x.label}",
                    f"{x.saved_ms:.1f}",
                    f"{x.write_ms:.1f}",
                    f"{x.est_bytes / 2**20:.1f}",
                    x.verdict,
                ]
                for x in c.candidates
            ],
        )
    )
    for s in c.skipped:
        console.print(
            f"[dim]- left out: {s['table']} ({', '.join(s['columns'])}): {s['why']}[/]",
            highlight=False,
        )
    for n in c.notes:
        console.print(f"[dim]- {n}[/]", highlight=False)


@indexing_app.command(
    "candidates", epilog=example("opscore autonomous indexing candidates -t prod --hours 24")
)
def candidates(
    target: str | None = TargetOpt, hours: float = HoursOpt, as_json: bool = JsonOpt
) -> None:
    """Candidates costed against the workload, the set it would build and why not the rest."""
    c = api.indexing_candidates(_target(target), hours)
    if as_json:
        print_json(c)
        return
    _print_candidates(c)


@indexing_app.command("run", epilog=example("opscore autonomous indexing run -t prod"))
def run(target: str | None = TargetOpt, hours: float = HoursOpt, as_json: bool = JsonOpt) -> None:
    """One cycle as the target's auto-indexing mode allows.

    off: nothing; report-only: journaled; implement: built, verified, dropped when it does not
    help."""
    r = api.run_indexing(_target(target), hours)
    if as_json:
        print_json(r)
        return
    _print_candidates(r.candidates)
    if r.steps:
        console.print(
            table(
                f"Auto-indexing of {r.target} ({r.mode})",
                ["action", "index", "table", "mode", "outcome", "journal", "detail"],
                [
                    [s.action, s.index, s.table, s.mode, s.outcome, s.action_id or "", s.detail]
                    for s in r.steps
                ],
            )
        )
    console.print(r.summary, highlight=False)


def _print_rows(title: str, rows: list[api.AutoIndex]) -> None:
    if not rows:
        console.print(f"{title}: none.")
        return
    console.print(
        table(
            title,
            ["id", "status", "index", "table", "columns", "saved ms", "writes ms", "note"],
            [
                [
                    r.autoindex_id,
                    r.status,
                    r.index_name,
                    f"{r.schema_name}.{r.table_name}",
                    _columns(r),
                    f"{r.est_saved_ms or 0:.1f}",
                    f"{r.est_write_ms or 0:.1f}",
                    r.note,
                ]
                for r in rows
            ],
        )
    )


def _columns(r: api.AutoIndex) -> str:
    """Key columns, INCLUDE columns and a partial index's predicate."""
    out = ", ".join(r.columns)
    if r.include:
        out += f" INCLUDE ({', '.join(r.include)})"
    if r.predicate:
        v = r.predicate["value"]
        out += f" WHERE {r.predicate['column']} " + ("IS NULL" if v is None else f"= {v!r}")
    return out


def _listing(name: str, fn, title: str) -> None:
    @indexing_app.command(name, epilog=example(f"opscore autonomous indexing {name} -t prod"))
    def _cmd(target: str | None = TargetOpt, limit: int = LimitOpt, as_json: bool = JsonOpt):
        rows = fn(_target(target), limit)
        if as_json:
            print_json(rows)
            return
        _print_rows(title, rows)

    _cmd.__doc__ = title + " (newest first, with evidence in --json)."


_listing("recommendations", api.indexing_recommendations, "Recommended indexes")
_listing("created", api.indexing_created, "Indexes auto-indexing created")
_listing("dropped", api.indexing_dropped, "Indexes auto-indexing dropped")


@indexing_app.command("report", epilog=example("opscore autonomous indexing report -t prod"))
def report(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Mode and settings, its indexes by status, and every index's health.

    Indexes opscore did not build are reported only, never dropped."""
    r = api.indexing_report(_target(target))
    if as_json:
        print_json(r)
        return
    _print_config(r.config)
    console.print(", ".join(f"{n} {k}" for k, n in r.counts.items()) or "No index yet.")
    _print_rows("Recent", r.recent)
    if r.index_health:
        console.print(
            table(
                "Index health (report only for indexes opscore did not create)",
                ["verdict", "index", "table", "auto-indexing", "detail"],
                [
                    [
                        h["verdict"],
                        h["index"],
                        h["table"],
                        "yes" if h["auto_indexing"] else "",
                        h.get("detail", ""),
                    ]
                    for h in r.index_health
                ],  # fmt: skip
            )
        )
