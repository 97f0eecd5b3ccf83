"""Alerts: rule CRUD, the default rule set, evaluation (what the flow runs every minute),
alerts with their lifecycle (firing -> acknowledged -> resolved) and notification records."""

from __future__ import annotations

from typing import Any

from .. import repository
from ..alerts import evaluate as evaluation
from ..alerts.evaluate import EvaluationRun, RuleResult
from ..alerts.rules import DEFAULT_RULES, KINDS, METRICS, SEVERITIES, validate_rule
from ..collectors import health_reads
from ..config import get_settings
from ..errors import InvalidInput
from ..model.target import Target
from ..repository import alerts as repo
from ..repository import targets as repo_targets
from .targets import get_target, list_targets, target_session

__all__ = [
    "AlertRule",
    "Alert",
    "AlertNotification",
    "EvaluationRun",
    "RuleResult",
    "ALERT_METRICS",
    "ALERT_KINDS",
    "DEFAULT_ALERT_RULES",
    "create_alert_rule",
    "list_alert_rules",
    "get_alert_rule",
    "update_alert_rule",
    "delete_alert_rule",
    "install_default_alert_rules",
    "evaluate_alerts",
    "list_alerts",
    "get_alert",
    "ack_alert",
    "resolve_alert",
    "alert_notifications",
]

AlertRule = repo.Rule
Alert = repo.Alert
AlertNotification = repo.Notification
ALERT_METRICS = {m.name: {"unit": m.unit, "kinds": list(m.kinds), "description": m.description}
                 for m in METRICS.values()}  # fmt: skip
ALERT_KINDS = KINDS
DEFAULT_ALERT_RULES = DEFAULT_RULES
STATUSES = ("firing", "acknowledged", "resolved")


def _rule_ref(rule: int | str) -> int | str:
    if isinstance(rule, str) and rule.isdigit():
        return int(rule)
    return rule


def create_alert_rule(
    name: str,
    metric: str,
    value: float,
    op: str = ">",
    kind: str = "threshold",
    target: str | None = None,
    for_s: int | str = 0,
    clear_for_s: int | str = 0,
    severity: str = "warning",
    channels: list[dict[str, Any]] | None = None,
    description: str = "",
    enabled: bool = True,
) -> AlertRule:
    """Create a rule (``target`` None: every target). Durations as seconds or '5m'.
    Everything is validated before anything is stored."""
    values = validate_rule(
        {
            "name": name, "metric": metric, "value": value, "op": op, "kind": kind,
            "for_s": for_s, "clear_for_s": clear_for_s, "severity": severity,
            "channels": channels or [], "description": description, "enabled": enabled,
        }
    )  # fmt: skip
    with repository.session() as conn:
        if target:
            values["target_id"] = repo_targets.get(conn, target).target_id
        return repo.insert_rule(conn, values)


def list_alert_rules(target: str | None = None, enabled: bool | None = None) -> list[AlertRule]:
    """Rules (those that apply to ``target``: its own and the every-target ones)."""
    with repository.session() as conn:
        tid = repo_targets.get(conn, target).target_id if target else None
        return repo.list_rules(conn, tid, enabled)


def get_alert_rule(rule: int | str) -> AlertRule:
    """A rule by id or name."""
    with repository.session() as conn:
        return repo.get_rule(conn, _rule_ref(rule))


def update_alert_rule(
    rule: int | str,
    *,
    metric: str | None = None,
    value: float | None = None,
    op: str | None = None,
    kind: str | None = None,
    target: str | None = None,
    all_targets: bool = False,
    for_s: int | str | None = None,
    clear_for_s: int | str | None = None,
    severity: str | None = None,
    channels: list[dict[str, Any]] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> AlertRule:
    """Change the given fields of a rule (its pending/clearing clocks restart)."""
    given = {
        "metric": metric, "value": value, "op": op, "kind": kind, "for_s": for_s,
        "clear_for_s": clear_for_s, "severity": severity, "channels": channels,
        "description": description, "enabled": enabled,
    }  # fmt: skip
    changes = {k: v for k, v in given.items() if v is not None}
    if target and all_targets:
        raise InvalidInput("Give a target or all_targets, not both.")
    with repository.session() as conn:
        current = repo.get_rule(conn, _rule_ref(rule))
        merged = {"kind": current.kind, "metric": current.metric, **changes}
        validate_rule(merged, partial=True)  # kind and metric checked together
        changes = validate_rule({"kind": merged["kind"], **changes}, partial=True)
        if target:
            changes["target_id"] = repo_targets.get(conn, target).target_id
        elif all_targets:
            changes["target_id"] = None
        return repo.update_rule(conn, current.rule_id, changes)


def delete_alert_rule(rule: int | str) -> AlertRule:
    """Delete a rule with its alerts and their notification records."""
    with repository.session() as conn:
        return repo.delete_rule(conn, repo.get_rule(conn, _rule_ref(rule)).rule_id)


def install_default_alert_rules(
    channels: list[dict[str, Any]] | None = None, enabled: bool = True
) -> list[AlertRule]:
    """The default rule set (every target): replication lag, connections near max, wraparound
    risk, idle in transaction, a prepared transaction stuck, blocked sessions, disk nearly
    full, WAL not archived, backup overdue, sampler stopped, snapshots stopped, the capacity
    forecasts, and the workload anomaly rule (installed disabled: it needs two days of
    snapshots, its description says so). Existing ones are left as they are: running it again
    after an upgrade adds the rules the new version brings."""
    out = []
    with repository.session() as conn:
        existing = {r.name for r in repo.list_rules(conn)}
        for name, fields in DEFAULT_RULES.items():
            if name in existing:
                out.append(repo.get_rule(conn, name))
                continue
            # a rule disabled by default (workload_anomaly: until the history is enough)
            # stays disabled: its description says when to enable it
            fields = dict(fields)
            on = enabled and fields.pop("enabled", True)
            values = validate_rule(
                {"name": name, **fields, "channels": channels or [], "enabled": on}
            )
            values["builtin"] = True
            out.append(repo.insert_rule(conn, values))
    return out


def _read(t: Target) -> dict[str, Any]:
    with target_session(t) as conn:
        return health_reads.server_reading(conn)


def evaluate_alerts(target: str | None = None) -> EvaluationRun:
    """Evaluate every enabled rule on every target (or one): open, keep, resolve alerts and
    send their notifications. What the ``alerts`` flow runs every minute."""
    targets = [get_target(target)] if target else list_targets()
    with repository.session() as conn:
        return evaluation.evaluate(conn, targets, _read, get_settings())


def list_alerts(
    status: str | None = None,
    target: str | None = None,
    severity: str | None = None,
    limit: int = 200,
) -> list[Alert]:
    """Alerts, newest first: open ones (firing and acknowledged) unless ``status`` says
    ``firing``, ``acknowledged``, ``resolved`` or ``all``."""
    if status not in (None, "all", "open", *STATUSES):
        raise InvalidInput(
            f"Unknown alert status {status!r}.", "Use firing, acknowledged, resolved, open or all."
        )
    if severity is not None and severity not in SEVERITIES:
        raise InvalidInput(f"Unknown severity {severity!r}.", f"Use {', '.join(SEVERITIES)}.")
    if limit < 1:
        raise InvalidInput("limit must be at least 1.")
    statuses = {
        None: ("firing", "acknowledged"),
        "open": ("firing", "acknowledged"),
        "all": STATUSES,
    }.get(status, (status,))
    with repository.session() as conn:
        tid = repo_targets.get(conn, target).target_id if target else None
        return repo.list_alerts(conn, statuses, tid, severity, limit)  # type: ignore[arg-type]


def get_alert(alert_id: int) -> Alert:
    """One alert with its notification records."""
    with repository.session() as conn:
        return repo.get_alert(conn, alert_id)


def ack_alert(alert_id: int, by: str = "user") -> Alert:
    """Acknowledge a firing alert: it stays open (no new notification) until it resolves."""
    with repository.session() as conn:
        return repo.set_alert_status(conn, alert_id, "acknowledged", by, ("firing",))


def resolve_alert(alert_id: int, by: str = "user") -> Alert:
    """Resolve an open alert by hand (if the condition still holds, the next evaluation opens
    a new one)."""
    with repository.session() as conn:
        return repo.set_alert_status(conn, alert_id, "resolved", by, ("firing", "acknowledged"))


def alert_notifications(alert_id: int | None = None) -> list[AlertNotification]:
    """The delivery records (every alert, or one)."""
    with repository.session() as conn:
        return repo.notifications(conn, alert_id)
