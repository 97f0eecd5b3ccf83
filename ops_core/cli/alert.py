"""`opscore alert`: rules (create, list, show, update, delete, defaults), evaluation (what the
flow runs every minute) and alerts (list, show, ack, resolve)."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(help="Alert rules, evaluation and alerts (firing -> acknowledged -> resolved).")
rule_app = typer.Typer(help="Alert rules: threshold, rate, absence, addm, anomaly.")
app.add_typer(rule_app, name="rule")


def _channels(webhook: list[str] | None, token_env: str | None, email: list[str] | None):
    # --webhook '$VAR' (quoted): the URL is a secret read from the environment at send time
    out: list[dict] = [
        {"type": "webhook", "url_env": u[1:], "token_env": token_env}
        if u.startswith("$")
        else {"type": "webhook", "url": u, "token_env": token_env}
        for u in webhook or []
    ]
    if email:
        out.append({"type": "email", "to": list(email)})
    return out or None


def _rules_table(rules) -> None:
    console.print(
        table(
            None,
            ["id", "name", "target", "kind", "condition", "for", "clear for", "severity", "on"],
            [
                [
                    r.rule_id,
                    r.name,
                    r.target or "(all)",
                    r.kind,
                    f"{r.metric} {r.op} {r.value:g}",
                    f"{r.for_s}s",
                    f"{r.clear_for_s}s",
                    r.severity,
                    "yes" if r.enabled else "no",
                ]
                for r in rules
            ],
        )
    )


WebhookOpt = typer.Option(
    None,
    "--webhook",
    help="Webhook URL to POST to (repeatable); '$VAR' reads a secret URL from $VAR at send time.",
)
TokenOpt = typer.Option(
    None, "--webhook-token-env", help="Environment variable holding the webhook's Bearer token."
)
EmailOpt = typer.Option(None, "--email", help="E-mail recipient (repeatable; SMTP from settings).")


@rule_app.command(
    "create",
    epilog=example(
        "opscore alert rule create --target prod --name conn --metric connections_pct "
        "--op '>' --value 90 --for 5m",
        "opscore alert rule create --name sampler --kind absence --metric ash_sampler --value 120",
        "opscore alert rule create --name addm --kind addm --metric addm_impact_pct --value 30 "
        "--webhook https://hooks.example.com/opscore --webhook-token-env HOOK_TOKEN",
    ),
)
def rule_create(
    name: str = typer.Option(..., "--name", help="Rule name."),
    metric: str = typer.Option(..., "--metric", help="What to watch (see `alert rule metrics`)."),
    value: float = typer.Option(..., "--value", help="Threshold (absence: grace seconds)."),
    op: str = typer.Option(">", "--op", help="Comparison: > >= < <=."),
    kind: str = typer.Option(
        "threshold", "--kind", help="threshold|rate|absence|addm|anomaly|forecast."
    ),
    target: str | None = typer.Option(None, "--target", "-t", help="Default: every target."),
    for_: str = typer.Option("0s", "--for", help="Condition must hold this long (30s, 5m)."),
    clear_for: str = typer.Option("0s", "--clear-for", help="Must be clear this long to resolve."),
    severity: str = typer.Option("warning", "--severity", help="info|warning|critical."),
    webhook: list[str] = WebhookOpt,
    token_env: str | None = TokenOpt,
    email: list[str] = EmailOpt,
    description: str | None = typer.Option(None, "--description"),
    disabled: bool = typer.Option(False, "--disabled", help="Create it switched off."),
    as_json: bool = JsonOpt,
) -> None:
    """Create an alert rule (validated before anything is stored)."""
    r = api.create_alert_rule(
        name, metric, value, op=op, kind=kind, target=target, for_s=for_, clear_for_s=clear_for,
        severity=severity, channels=_channels(webhook, token_env, email),
        description=description or "", enabled=not disabled,
    )  # fmt: skip
    if as_json:
        print_json(r)
        return
    console.print(f"Rule {r.rule_id} {r.name!r} created.")


@rule_app.command(
    "list", epilog=example("opscore alert rule list", "opscore alert rule list -t prod --json")
)
def rule_list(
    target: str | None = typer.Option(None, "--target", "-t", help="Rules that apply to it."),
    as_json: bool = JsonOpt,
) -> None:
    """Alert rules."""
    rules = api.list_alert_rules(target)
    if as_json:
        print_json(rules)
        return
    _rules_table(rules)


@rule_app.command("show", epilog=example("opscore alert rule show conn"))
def rule_show(rule: str, as_json: bool = JsonOpt) -> None:
    """One rule (by id or name)."""
    r = api.get_alert_rule(rule)
    if as_json:
        print_json(r)
        return
    _rules_table([r])
    if r.description:
        console.print(r.description)
    for ch in r.channels:
        where = ch.get("url") or (f"${ch['url_env']}" if ch.get("url_env") else "")
        console.print(f"  notifies {ch['type']}: {where or ', '.join(ch.get('to', []))}")


@rule_app.command(
    "update",
    epilog=example(
        "opscore alert rule update conn --value 95 --for 10m",
        "opscore alert rule update conn --disable",
    ),
)
def rule_update(
    rule: str,
    metric: str | None = typer.Option(None, "--metric"),
    value: float | None = typer.Option(None, "--value"),
    op: str | None = typer.Option(None, "--op"),
    kind: str | None = typer.Option(None, "--kind"),
    target: str | None = typer.Option(None, "--target", "-t"),
    all_targets: bool = typer.Option(False, "--all-targets", help="Apply to every target."),
    for_: str | None = typer.Option(None, "--for"),
    clear_for: str | None = typer.Option(None, "--clear-for"),
    severity: str | None = typer.Option(None, "--severity"),
    webhook: list[str] = WebhookOpt,
    token_env: str | None = TokenOpt,
    email: list[str] = EmailOpt,
    description: str | None = typer.Option(None, "--description"),
    enable: bool = typer.Option(False, "--enable"),
    disable: bool = typer.Option(False, "--disable"),
    as_json: bool = JsonOpt,
) -> None:
    """Change a rule's given fields."""
    if enable and disable:
        raise typer.BadParameter("Give --enable or --disable, not both.")
    r = api.update_alert_rule(
        rule, metric=metric, value=value, op=op, kind=kind, target=target,
        all_targets=all_targets, for_s=for_, clear_for_s=clear_for, severity=severity,
        channels=_channels(webhook, token_env, email), description=description,
        enabled=True if enable else False if disable else None,
    )  # fmt: skip
    if as_json:
        print_json(r)
        return
    console.print(f"Rule {r.rule_id} {r.name!r} updated.")


@rule_app.command("delete", epilog=example("opscore alert rule delete conn"))
def rule_delete(rule: str, as_json: bool = JsonOpt) -> None:
    """Delete a rule (with its alerts and their notification records)."""
    r = api.delete_alert_rule(rule)
    if as_json:
        print_json(r)
        return
    console.print(f"Rule {r.rule_id} {r.name!r} deleted.")


@rule_app.command(
    "defaults",
    epilog=example(
        "opscore alert rule defaults", "opscore alert rule defaults --email dba@example.com"
    ),
)
def rule_defaults(
    webhook: list[str] = WebhookOpt,
    token_env: str | None = TokenOpt,
    email: list[str] = EmailOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Install the default rule set a DBA switches on (every target; existing ones kept)."""
    rules = api.install_default_alert_rules(_channels(webhook, token_env, email))
    if as_json:
        print_json(rules)
        return
    _rules_table(rules)


@rule_app.command("metrics", epilog=example("opscore alert rule metrics"))
def rule_metrics(as_json: bool = JsonOpt) -> None:
    """The metrics rules can watch, their units and the rule kinds that use them."""
    if as_json:
        print_json(api.ALERT_METRICS)
        return
    console.print(
        table(
            None,
            ["metric", "unit", "kinds", "description"],
            [
                [m, d["unit"], ", ".join(d["kinds"]), d["description"]]
                for m, d in api.ALERT_METRICS.items()
            ],
        )
    )


@app.command(
    "evaluate", epilog=example("opscore alert evaluate", "opscore alert evaluate -t prod --json")
)
def evaluate(
    target: str | None = typer.Option(None, "--target", "-t", help="Only this target."),
    as_json: bool = JsonOpt,
) -> None:
    """Evaluate every enabled rule now (what the `alerts` flow runs every minute)."""
    run = api.evaluate_alerts(target)
    if as_json:
        print_json(run)
        return
    console.print(
        table(
            f"{run.rules} rules on {run.targets} targets: {run.fired} fired, {run.resolved} "
            f"resolved, {run.notifications} notifications ({run.failed_notifications} failed)",
            ["rule", "target", "status", "value", "limit", "message"],
            [
                [r.rule, r.target, r.status, "-" if r.value is None else f"{r.value:.4g}",
                 "-" if r.limit is None else f"{r.limit:.4g}", r.message]
                for r in run.results
            ],
        )
    )  # fmt: skip


def _alerts_table(alerts) -> None:
    console.print(
        table(
            None,
            ["id", "status", "severity", "rule", "target", "fired", "value", "summary"],
            [
                [a.alert_id, a.status, a.severity, a.rule, a.target, f"{a.fired_at:%F %T}",
                 "-" if a.value is None else f"{a.value:.4g}", a.summary]
                for a in alerts
            ],
        )
    )  # fmt: skip


@app.command("list", epilog=example("opscore alert list", "opscore alert list --status all --json"))
def list_(
    status: str | None = typer.Option(
        None, "--status", help="open (default), firing, acknowledged, resolved, all."
    ),
    target: str | None = typer.Option(None, "--target", "-t"),
    severity: str | None = typer.Option(None, "--severity"),
    limit: int = typer.Option(200, "--limit", min=1),
    as_json: bool = JsonOpt,
) -> None:
    """Alerts, newest first (open ones unless --status says otherwise)."""
    alerts = api.list_alerts(status, target, severity, limit)
    if as_json:
        print_json(alerts)
        return
    if not alerts:
        console.print("No alerts.")
        return
    _alerts_table(alerts)


@app.command("show", epilog=example("opscore alert show 12 --json"))
def show(alert_id: int, as_json: bool = JsonOpt) -> None:
    """One alert with its notification deliveries."""
    a = api.get_alert(alert_id)
    if as_json:
        print_json(a)
        return
    _alerts_table([a])
    for n in a.notifications:
        console.print(
            f"  {n['event']} -> {n['channel']} {n['destination']}: "
            f"{'delivered' if n['ok'] else 'FAILED'} after {n['attempts']} attempt(s) "
            f"{n['response'] or n['error'] or ''}"
        )


@app.command("ack", epilog=example("opscore alert ack 12"))
def ack(
    alert_id: int,
    by: str = typer.Option("cli", "--by", help="Who acknowledges."),
    as_json: bool = JsonOpt,
) -> None:
    """Acknowledge a firing alert (no more notifications; it resolves when the condition ends)."""
    a = api.ack_alert(alert_id, by)
    if as_json:
        print_json(a)
        return
    console.print(f"Alert {a.alert_id} acknowledged.")


@app.command("resolve", epilog=example("opscore alert resolve 12"))
def resolve(
    alert_id: int,
    by: str = typer.Option("cli", "--by", help="Who resolves."),
    as_json: bool = JsonOpt,
) -> None:
    """Resolve an open alert by hand."""
    a = api.resolve_alert(alert_id, by)
    if as_json:
        print_json(a)
        return
    console.print(f"Alert {a.alert_id} resolved.")
