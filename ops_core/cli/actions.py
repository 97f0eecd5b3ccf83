"""`opscore actions`: the journal of changes made to monitored servers, and the policy per
target and feature (off / report_only / implement)."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(help="Changes to monitored servers: the journal and the policy.")


@app.command("list", epilog=example("opscore actions list", "opscore actions list -t prod --json"))
def list_(
    target: str | None = typer.Option(None, "--target", "-t", help="Only this target."),
    feature: str | None = typer.Option(None, "--feature", help="Only this feature."),
    limit: int = typer.Option(50, "--limit", min=1),
    as_json: bool = JsonOpt,
) -> None:
    """The newest journal entries: who asked what and why, the SQL, the outcome."""
    entries = api.action_journal(target, feature, limit)
    if as_json:
        print_json(entries)
        return
    console.print(
        table(
            None,
            ["id", "started", "target id", "feature", "mode", "outcome", "what", "who", "why"],
            [
                [
                    e.action_id,
                    f"{e.started_at:%Y-%m-%d %H:%M:%S}",
                    e.target_id,
                    e.feature,
                    e.mode,
                    e.outcome,
                    e.what,
                    e.requested_by,
                    e.why,
                ]
                for e in entries
            ],
        )
    )


@app.command(
    epilog=example(
        "opscore actions policy prod",
        "opscore actions policy prod --feature analyze --mode implement",
    )
)
def policy(
    target: str,
    feature: str | None = typer.Option(None, "--feature", help="The feature to set."),
    mode: str | None = typer.Option(None, "--mode", help="off, report_only or implement."),
    as_json: bool = JsonOpt,
) -> None:
    """Show the action policy of a target, or set one feature's mode."""
    if (feature is None) != (mode is None):
        raise typer.BadParameter("Give both --feature and --mode to set a policy, or neither.")
    modes = (
        api.set_action_policy(target, feature, mode, by="cli")
        if feature and mode
        else api.action_policies(target)
    )
    if as_json:
        print_json(modes)
        return
    console.print(
        table(
            f"Action policy of {target}",
            ["feature", "mode", "description", "default"],
            [[f, m, *api.ACTION_FEATURES[f]] for f, m in modes.items()],
        )
    )
