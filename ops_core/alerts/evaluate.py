"""Evaluation: every enabled rule on every target it applies to, and the alert lifecycle.

Per rule and target the repository keeps since when the condition holds (``pending_since``)
and since when it has cleared (``clear_since``):

- the condition holds for ``for_s`` -> one alert is opened (``firing``) and notified once; while
  it stays open (firing or acknowledged) nothing more is sent (dedupe: one open alert per rule
  and target, enforced by a unique index too);
- the condition must stay false for ``clear_for_s`` before the alert resolves (flap damping; a
  return within that time counts a flap and sends nothing); resolving is notified once;
- a metric that is not available on this server is reported as such and changes nothing.

One evaluation at a time per repository (an advisory lock), so the flow and a manual
``opscore alert evaluate`` never notify twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from ..config import Settings
from ..errors import OpsCoreError
from ..model.serialize import to_jsonable
from ..model.target import Target
from ..repository import alerts as repo
from . import notify
from .metrics import Context, is_local_target, observe
from .rules import METRICS, compare


@dataclass
class RuleResult:
    rule: str
    rule_id: int
    target: str
    status: str  # ok, pending, firing, clearing, resolved, not available, learning
    value: float | None
    limit: float | None
    message: str
    alert_id: int | None = None
    notifications: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvaluationRun:
    evaluated_at: datetime
    targets: int
    rules: int
    fired: int
    resolved: int
    notifications: int
    failed_notifications: int
    results: list[RuleResult]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def _summary(
    rule: repo.Rule, target: str, value: float, limit: float, note: str | None = None
) -> str:
    unit = METRICS[rule.metric].unit
    what = f"{rule.metric} {'rate ' if rule.kind == 'rate' else ''}"
    suffix = "/s" if rule.kind == "rate" else ""
    return (
        f"{rule.name} on {target}: {what}= {_fmt(value)} {unit}{suffix} "
        f"({rule.op} {_fmt(limit)}). {note + ' ' if note else ''}{rule.description}".strip()
    )


def evaluate(
    conn: psycopg.Connection,
    targets: list[Target],
    read_target: Callable[[Target], dict[str, Any]],
    settings: Settings,
) -> EvaluationRun:
    """Evaluate every enabled rule for ``targets``; ``read_target`` gives a target's live row
    (``collectors.health_reads.server_reading`` in a monitoring session)."""
    conn.execute("SELECT pg_advisory_lock(%s)", (repo.EVALUATION_LOCK,))
    try:
        return _evaluate(conn, targets, read_target, settings)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (repo.EVALUATION_LOCK,))


def _evaluate(conn, targets, read_target, settings) -> EvaluationRun:
    started = datetime.now(UTC)
    rules = repo.list_rules(conn, enabled=True)
    results: list[RuleResult] = []
    for t in targets:
        applicable = [r for r in rules if r.target_id in (None, t.target_id)]
        if not applicable:
            continue
        ctx = Context(t, conn, settings, local=is_local_target(t))
        needs_live = any(r.kind in ("threshold", "rate") for r in applicable)
        if needs_live:
            try:
                ctx.reading = read_target(t)
                ctx.now = ctx.reading.get("now") or ctx.now
            except (OpsCoreError, psycopg.Error) as exc:
                ctx.reading_error = getattr(exc, "message", None) or str(exc).strip()
        for rule in applicable:
            results.append(_one(conn, rule, t, ctx, settings))
    sent = [n for r in results for n in r.notifications]
    just_sent = {(r.alert_id, n["event"]) for r in results for n in r.notifications}
    sent += _redeliver(conn, settings, just_sent)
    return EvaluationRun(
        evaluated_at=started,
        targets=len(targets),
        rules=len(rules),
        fired=sum(1 for r in results if r.message.startswith("fired:")),
        resolved=sum(1 for r in results if r.status == "resolved"),
        notifications=len(sent),
        failed_notifications=sum(1 for n in sent if not n["ok"]),
        results=results,
    )


def _one(conn, rule: repo.Rule, t: Target, ctx: Context, s: Settings) -> RuleResult:
    obs = observe(rule.metric, ctx, rule.value)
    state = repo.get_state(conn, rule.rule_id, t.target_id)
    now = ctx.now
    value = obs.value
    new_last = (state["last_value"], state["last_at"])
    res = RuleResult(rule.name, rule.rule_id, t.name, "ok", value, None, "")

    def keep(status: str, message: str) -> RuleResult:
        repo.put_state(
            conn, rule.rule_id, t.target_id,
            pending_since=state["pending_since"], clear_since=state["clear_since"],
            last_value=new_last[0], last_at=new_last[1], last_status=status,
            last_message=message,
        )  # fmt: skip
        res.status, res.message = status, message
        return res

    if obs.unavailable:
        return keep("not available", obs.unavailable)
    assert value is not None
    if rule.kind == "rate":
        prev, prev_at = state["last_value"], state["last_at"]
        new_last = (value, now)
        if prev is None or prev_at is None or now <= prev_at:
            return keep("learning", "first reading kept; the rate needs two evaluations")
        if value < prev:
            return keep("learning", "the counter went down (reset or restart): new baseline")
        value = (value - prev) / (now - prev_at).total_seconds()
        res.value = value
    limit = rule.value if obs.limit is None else obs.limit + rule.value
    res.limit = limit
    breach = compare(value, rule.op, limit)
    summary = _summary(rule, t.name, value, limit, obs.note)
    details = to_jsonable({"metric": rule.metric, "kind": rule.kind, **obs.detail})
    to_send: tuple[str, int] | None = None
    with conn.transaction():
        open_ = repo.open_alert(conn, rule.rule_id, t.target_id)
        pending, clearing = state["pending_since"], state["clear_since"]
        if breach:
            if open_ is not None:
                flapped = clearing is not None
                repo.touch_alert(conn, open_.alert_id, value, summary, details, flapped)
                clearing = None
                res.status, res.alert_id, res.message = open_.status, open_.alert_id, summary
            else:
                pending = pending or now
                held = (now - pending).total_seconds()
                if held >= rule.for_s:
                    alert_id = repo.insert_alert(conn, rule, t.target_id, summary, value, details)
                    pending = None
                    if alert_id is not None:
                        to_send = ("firing", alert_id)
                        res.alert_id = alert_id
                    res.status, res.message = "firing", f"fired: {summary}"
                else:
                    res.status = "pending"
                    res.message = f"condition holds for {held:.0f} of {rule.for_s} s: {summary}"
        else:
            pending = None
            if open_ is not None:
                clearing = clearing or now
                cleared = (now - clearing).total_seconds()
                if cleared >= rule.clear_for_s:
                    repo.set_alert_status(
                        conn, open_.alert_id, "resolved", "opscore (condition ended)",
                        ("firing", "acknowledged"),
                    )  # fmt: skip
                    clearing = None
                    to_send = ("resolved", open_.alert_id)
                    res.status, res.alert_id = "resolved", open_.alert_id
                    res.message = f"resolved: {summary}"
                else:
                    res.status, res.alert_id = "clearing", open_.alert_id
                    res.message = f"clear for {cleared:.0f} of {rule.clear_for_s} s: {summary}"
            else:
                clearing = None
                res.message = summary
        state["pending_since"], state["clear_since"] = pending, clearing
        keep(res.status, res.message)
    if to_send is not None:
        event, alert_id = to_send
        alert = repo.get_alert(conn, alert_id)
        records = notify.deliver(alert.as_dict(), event, notify.channels_for(rule.channels, s), s)
        with conn.transaction():
            for rec in records:
                repo.record_notification(conn, alert_id, **rec)
        res.notifications = records
    return res


def _redeliver(
    conn: psycopg.Connection, s: Settings, just_sent: set[tuple[int | None, str]]
) -> list[dict[str, Any]]:
    """Deliveries that failed every attempt are tried again by later evaluations (up to
    ``alert_redeliveries`` more times), each try recorded; not those this run just tried."""
    out: list[dict[str, Any]] = []
    for row in repo.undelivered(conn, 1 + s.alert_redeliveries):
        if (row["alert_id"], row["event"]) in just_sent:
            continue
        alert = repo.get_alert(conn, row["alert_id"])
        rule = repo.get_rule(conn, alert.rule_id)
        channels = [
            ch
            for ch in notify.channels_for(rule.channels, s)
            if ch["type"] == row["channel"] and notify.destination(ch) == row["destination"]
        ]
        if channels:
            records = notify.deliver(alert.as_dict(), row["event"], channels[:1], s)
        else:  # the rule lost this channel since: recorded, so the retries end
            records = [
                {**{k: row[k] for k in ("event", "channel", "destination")}, "attempts": 0,
                 "ok": False, "response": None, "error": "the rule no longer has this channel"}
            ]  # fmt: skip
        with conn.transaction():
            for rec in records:
                repo.record_notification(conn, alert.alert_id, **rec)
        out += records
    return out
