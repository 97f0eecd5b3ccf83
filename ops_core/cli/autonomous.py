"""`opscore autonomous ...`: the mode of each autonomous feature per target, and self-healing
(checks, a healing cycle, the actions it took, corruption checks, index health)."""

from __future__ import annotations

import typer

from .. import api
from .autoindex import indexing_app
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(
    help="Autonomous database: feature modes (off / report-only / implement) and self-healing.",
    no_args_is_help=True,
)
config_app = typer.Typer(help="The mode of each autonomous feature.", no_args_is_help=True)
healing_app = typer.Typer(help="Self-healing: checks, cycle, actions.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(healing_app, name="healing")
app.add_typer(indexing_app, name="indexing")

TargetOpt = typer.Option(
    None, "--target", "-t", help="Target name (default: the only target, or the embedded one)."
)
SamplesOpt = typer.Option(3, "--samples", min=1, max=60, help="Live samples of the blockers.")
IntervalOpt = typer.Option(
    1.0, "--interval", min=0.0, max=60.0, help="Seconds between the samples."
)
_COLOR = {"critical": "red", "warning": "yellow", "info": "cyan"}


def _target(name: str | None) -> str:
    return api.resolve_target(name).name


def _print_config(c: api.AutonomousConfig) -> None:
    console.print(
        table(
            f"Autonomous features of {c.target}",
            ["feature", "mode", "changes it may make (their effective mode)"],
            [
                [f, m, ", ".join(f"{k}={v}" for k, v in c.action_policies[f].items())]
                for f, m in c.modes.items()
            ],
        )
    )
    for n in c.notes:
        console.print(f"[dim]- {n}[/]", highlight=False)


@config_app.command(
    "show",
    epilog=example(
        "opscore autonomous config show -t prod", "opscore autonomous config show --json"
    ),
)
def config_show(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """The mode of each autonomous feature on a target."""
    c = api.autonomous_config(_target(target))
    if as_json:
        print_json(c)
        return
    _print_config(c)


@config_app.command(
    "set",
    epilog=example(
        "opscore autonomous config set -t prod --feature healing --mode report-only",
        "opscore autonomous config set -t prod --feature healing --mode implement",
    ),
)
def config_set(
    target: str | None = TargetOpt,
    feature: str = typer.Option(..., "--feature", help="healing, tuning or indexing."),
    mode: str = typer.Option(..., "--mode", help="off, report-only or implement."),
    as_json: bool = JsonOpt,
) -> None:
    """Set the mode of one autonomous feature (nothing acts in off or report-only)."""
    c = api.set_autonomous_config(_target(target), feature, mode, by="cli")
    if as_json:
        print_json(c)
        return
    _print_config(c)


def _print_issues(found: api.HealingIssues) -> None:
    if not found.issues:
        console.print(
            f"[green]No issue on {found.target}[/] ({found.samples} samples over "
            f"{found.observed_s:.0f} s)."
        )
    else:
        console.print(
            table(
                f"Self-healing checks of {found.target} ({found.samples} samples over "
                f"{found.observed_s:.0f} s)",
                ["severity", "issue", "object", "what", "remedy", "action"],
                [
                    [
                        f"[{_COLOR.get(i.severity, 'white')}]{i.severity}[/]",
                        i.kind,
                        i.object,
                        i.summary,
                        i.remedy,
                        i.action or "alert only",
                    ]
                    for i in found.issues
                ],
                drop=("remedy",),
            )
        )
    for n in found.not_checked:
        console.print(f"[dim]- not checked: {n}[/]", highlight=False)


@healing_app.command(
    "issues",
    epilog=example(
        "opscore autonomous healing issues -t prod", "opscore autonomous healing issues --json"
    ),
)
def issues(
    target: str | None = TargetOpt,
    samples: int = SamplesOpt,
    interval: float = IntervalOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run every self-healing check now (read-only) and list what it finds, worst first."""
    found = api.healing_issues(_target(target), samples=samples, interval_s=interval)
    if as_json:
        print_json(found)
        return
    _print_issues(found)


@healing_app.command(
    "run",
    epilog=example(
        "opscore autonomous healing run -t prod",
        "opscore autonomous healing run -t prod --samples 5 --json",
    ),
)
def run(
    target: str | None = TargetOpt,
    samples: int = SamplesOpt,
    interval: float = IntervalOpt,
    as_json: bool = JsonOpt,
) -> None:
    """One healing cycle: the checks, then each remedy as the self-healing mode allows.

    off: nothing; report-only: journaled only; implement: done. All journaled."""
    r = api.run_healing(_target(target), samples=samples, interval_s=interval)
    if as_json:
        print_json(r)
        return
    _print_issues(r.issues)
    if r.actions:
        console.print(
            table(
                f"Actions (self-healing mode: {r.mode})",
                ["issue", "object", "action", "mode", "outcome", "journal id", "detail"],
                [
                    [a.kind, a.object, a.action, a.mode, a.outcome, a.action_id or "", a.detail]
                    for a in r.actions
                ],
            )
        )
    console.print(r.summary, highlight=False)


@healing_app.command(
    "actions", epilog=example("opscore autonomous healing actions -t prod --limit 20")
)
def actions_(
    target: str | None = TargetOpt,
    limit: int = typer.Option(50, "--limit", min=1, max=10000),
    as_json: bool = JsonOpt,
) -> None:
    """What self-healing did, reported or was refused (the action journal), newest first."""
    entries = api.healing_actions(_target(target), limit)
    if as_json:
        print_json(entries)
        return
    console.print(
        table(
            "Self-healing actions",
            ["id", "started", "kind", "mode", "outcome", "what", "why"],
            [
                [
                    e.action_id,
                    f"{e.started_at:%Y-%m-%d %H:%M:%S}",
                    e.feature,
                    e.mode,
                    e.outcome,
                    e.what,
                    e.why,
                ]
                for e in entries
            ],
        )
    )


@healing_app.command(
    "report",
    epilog=example(
        "opscore autonomous healing report -t prod", "opscore autonomous healing report --json"
    ),
)
def report(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Self-healing at a glance: mode, issues, actions, index health, corruption."""
    r = api.healing_report(_target(target))
    if as_json:
        print_json(r)
        return
    sev = ", ".join(f"{n} {s}" for s, n in r.by_severity.items())
    console.print(f"[bold]{r.target}[/]: self-healing {r.mode}; issues now: {sev}")
    _print_issues(r.issues)
    idx = ", ".join(f"{n} {v}" for v, n in sorted(r.index_verdicts.items()))
    console.print(f"indexes: {idx or 'none'}")
    c = r.last_corruption_check
    console.print(
        "corruption check: never run (`opscore autonomous healing corruption --check`)"
        if c is None
        else f"last corruption check {c.finished_at:%Y-%m-%d %H:%M} UTC: {c.method}; "
        f"{c.checked} checked, {c.corrupt} corrupt, {c.skipped} skipped",
        highlight=False,
    )
    console.print(f"{len(r.recent_actions)} recent action(s): `opscore autonomous healing actions`")


@healing_app.command(
    "corruption",
    epilog=example(
        "opscore autonomous healing corruption -t prod --check",
        "opscore autonomous healing corruption -t prod --json",
    ),
)
def corruption(
    target: str | None = TargetOpt,
    check: bool = typer.Option(False, "--check", help="Run a check now (reads every index)."),
    max_mb: int = typer.Option(1024, "--max-mb", min=1, help="Index bytes to read at most."),
    as_json: bool = JsonOpt,
) -> None:
    """B-tree corruption (amcheck) and data checksum failures: the last checks, or one now."""
    name = _target(target)
    checks = (
        [api.check_corruption(name, max_bytes=max_mb * 1024 * 1024)]
        if check
        else api.corruption_results(name)
    )
    if as_json:
        print_json(checks)
        return
    if not checks:
        console.print("No corruption check yet: run with --check.")
        return
    for c in checks:
        color = "red" if c.corrupt else ("green" if c.available else "yellow")
        console.print(
            f"[{color}]{c.finished_at:%Y-%m-%d %H:%M:%S} UTC: {c.method}: {c.checked} checked, "
            f"{c.corrupt} corrupt, {c.skipped} skipped[/]",
            highlight=False,
        )
        for r in c.results:
            if not r["ok"]:
                console.print(f"  {r['schema']}.{r['index']} ({r['table']}): {r['error']}")


@healing_app.command(
    "index-health", epilog=example("opscore autonomous healing index-health -t prod --all")
)
def index_health(
    target: str | None = TargetOpt,
    all_: bool = typer.Option(False, "--all", help="Also the indexes judged ok."),
    as_json: bool = JsonOpt,
) -> None:
    """Invalid, duplicate, redundant (prefix) and unused indexes, whoever created them."""
    verdicts = api.index_health(_target(target))
    if not all_:
        verdicts = [v for v in verdicts if v.verdict != "ok"]
    if as_json:
        print_json(verdicts)
        return
    if not verdicts:
        console.print("[green]Every index is valid, used and not a duplicate.[/]")
        return
    console.print(
        table(
            "Index health",
            ["verdict", "index", "table", "bytes", "scans", "detail"],
            [
                [v.verdict, f"{v.schema}.{v.index}", v.table, v.bytes, v.scans, v.detail]
                for v in verdicts
            ],
        )
    )


# ------------------------------------------------------------------------------ self-tuning
tuning_app = typer.Typer(help="Self-tuning: parameters, trials, rollback.", no_args_is_help=True)
app.add_typer(tuning_app, name="tuning")
RamOpt = typer.Option(
    None, "--ram-gb", min=0.1, help="The server's RAM when it is not on this host."
)


def _print_trials(trials: list[api.TuningTrial]) -> None:
    if not trials:
        console.print("No tuning trial yet.")
        return
    console.print(
        table(
            "Tuning trials",
            ["id", "applied", "parameter", "scope", "before", "after", "status", "ms/call", "note"],
            [
                [
                    x.trial_id,
                    f"{x.applied_at:%Y-%m-%d %H:%M}",
                    x.parameter,
                    x.scope,
                    x.old_value or "(default)",
                    x.new_value,
                    x.status,
                    ""
                    if x.before_ms_per_call is None
                    else f"{x.before_ms_per_call:.3f} -> {x.after_ms_per_call:.3f}",
                    x.note,
                ]
                for x in trials
            ],
        )  # fmt: skip
    )


@tuning_app.command(
    "parameters",
    epilog=example(
        "opscore autonomous tuning parameters -t prod",
        "opscore autonomous tuning parameters --ram-gb 64",
    ),
)
def parameters(
    target: str | None = TargetOpt, ram_gb: float | None = RamOpt, as_json: bool = JsonOpt
) -> None:
    """Tunable parameters: value, context, source, baseline, recommendation and evidence."""
    params = api.tuning_parameters(_target(target), ram_gb)
    if as_json:
        print_json(params)
        return
    console.print(
        table(
            "Tunable parameters",
            [
                "parameter",
                "value",
                "context",
                "source",
                "baseline",
                "recommended",
                "status",
                "evidence",
            ],
            [
                [
                    p.name,
                    p.value,
                    p.context,
                    p.source,
                    p.baseline or "",
                    p.recommended or "",
                    p.status,
                    "; ".join(p.evidence),
                ]
                for p in params
            ],
            drop=("source",),
        )  # fmt: skip
    )


@tuning_app.command(
    "apply",
    epilog=example(
        "opscore autonomous tuning apply -t prod",
        "opscore autonomous tuning apply -t prod --parameter work_mem --value 64MB",
    ),
)
def apply(
    target: str | None = TargetOpt,
    parameter: str | None = typer.Option(None, "--parameter", help="One parameter to try."),
    value: str | None = typer.Option(None, "--value", help="The value to try (with --parameter)."),
    ram_gb: float | None = RamOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Apply the recommended changes (or one value) as trials, as self_tuning's mode allows."""
    if value is not None and parameter is None:
        raise typer.BadParameter("--value needs --parameter.")
    trials = api.apply_tuning(_target(target), parameter, value, ram_gb=ram_gb, requested_by="cli")
    if as_json:
        print_json(trials)
        return
    _print_trials(trials)
    if not trials:
        console.print("Nothing to apply: no recommended change within its bounded range.")


@tuning_app.command(
    "evaluate", epilog=example("opscore autonomous tuning evaluate -t prod --tolerance 10")
)
def evaluate(
    target: str | None = TargetOpt,
    tolerance: float = typer.Option(10.0, "--tolerance", min=0, max=1000, help="% slower allowed."),
    as_json: bool = JsonOpt,
) -> None:
    """Judge the trials still measuring on the snapshots after them; roll back what hurt."""
    trials = api.evaluate_tuning(_target(target), tolerance)
    if as_json:
        print_json(trials)
        return
    _print_trials(trials)


@tuning_app.command("actions", epilog=example("opscore autonomous tuning actions -t prod"))
def tuning_actions(
    target: str | None = TargetOpt,
    limit: int = typer.Option(50, "--limit", min=1, max=10000),
    as_json: bool = JsonOpt,
) -> None:
    """The trials: value before and after, status, measurements, notes."""
    trials = api.tuning_actions(_target(target), limit)
    if as_json:
        print_json(trials)
        return
    _print_trials(trials)


@tuning_app.command(
    "override",
    epilog=example(
        "opscore autonomous tuning override work_mem --value 64MB -t prod",
        "opscore autonomous tuning override work_mem --unpin -t prod",
    ),
)
def override(
    parameter: str,
    target: str | None = TargetOpt,
    value: str | None = typer.Option(None, "--value", help="Pin at this value."),
    unpin: bool = typer.Option(False, "--unpin", help="Remove the pin."),
    as_json: bool = JsonOpt,
) -> None:
    """Pin a parameter (self-tuning reports it, never changes it), or unpin it."""
    if (value is None) == (not unpin):
        raise typer.BadParameter("Give --value to pin, or --unpin.")
    p = api.override_parameter(_target(target), parameter, None if unpin else value, by="cli")
    if as_json:
        print_json(p)
        return
    console.print(
        f"{p.name}: {p.value} ({p.status}" + (f", pinned at {p.pinned})" if p.pinned else ")")
    )


@tuning_app.command(
    "report",
    epilog=example(
        "opscore autonomous tuning report -t prod", "opscore autonomous tuning report --json"
    ),
)
def tuning_report(
    target: str | None = TargetOpt, ram_gb: float | None = RamOpt, as_json: bool = JsonOpt
) -> None:
    """Self-tuning at a glance: mode, recommendations, trials."""
    r = api.tuning_report(_target(target), ram_gb)
    if as_json:
        print_json(r)
        return
    console.print(f"[bold]{r.target}[/]: self-tuning {r.mode}; host: {r.host}", highlight=False)
    console.print(", ".join(f"{n} {k}" for k, n in r.summary.items()), highlight=False)
    changes = [p for p in r.parameters if p.status in ("change", "restart")]
    for p in changes:
        console.print(
            f"- {p.name}: {p.value} -> {p.recommended}"
            + (" (restart)" if p.status == "restart" else "")
            + (f": {'; '.join(p.evidence)}" if p.evidence else ""),
            highlight=False,
        )
    _print_trials(r.trials)
