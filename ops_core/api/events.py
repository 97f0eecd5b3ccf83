"""Performance events: one time-ordered feed of what the repository already records about a
target's performance — alerts that fired, ADDM analyses with their top finding, and finished
SQL Monitor executions slower than a threshold. It reads the repository only (no target
query), so a subscription can poll it cheaply; each event is stable once written (same
``kind`` + ``ref_id`` + fields on every read), so a poller sees only the new ones as new."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import InvalidInput
from .addm import list_addm
from .alerts import list_alerts
from .sqlmon import list_sql_executions
from .targets import list_targets, resolve_target

__all__ = ["EVENT_KINDS", "PerformanceEvent", "performance_events"]

EVENT_KINDS = ("alert", "addm", "slow_sql")


@dataclass
class PerformanceEvent:
    kind: str  # alert / addm / slow_sql
    at: datetime  # when it happened: alert fired, ADDM analysis made, execution ended
    target: str
    severity: str  # alerts: their rule's; addm: warning with a finding, else info; slow_sql: info
    title: str
    ref_id: int | None  # alert_id, analysis_id or exec_id (opscore alert|addm|sql show ...)


def performance_events(
    target: str | None = None,
    hours: float = 1.0,
    min_elapsed_s: float = 5.0,
    kinds: list[str] | None = None,
    limit: int = 100,
) -> list[PerformanceEvent]:
    """Events of the last ``hours``, newest first: alerts fired, ADDM analyses (with their
    top finding) and SQL Monitor executions that ended after running ``min_elapsed_s`` or
    longer; ``kinds`` picks some of alert, addm, slow_sql."""
    if not 0 < hours <= 24 * 31:
        raise InvalidInput(f"hours {hours} is out of range.", "Give 0 < hours <= 744 (31 days).")
    if limit < 1:
        raise InvalidInput(f"limit {limit} must be at least 1.")
    wanted = set(kinds or EVENT_KINDS)
    if wanted - set(EVENT_KINDS):
        raise InvalidInput(
            f"Unknown event kind(s) {sorted(wanted - set(EVENT_KINDS))}.",
            f"Use some of {', '.join(EVENT_KINDS)}.",
        )
    since = datetime.now(UTC) - timedelta(hours=hours)
    name = resolve_target(target).name if target else None
    out: list[PerformanceEvent] = []
    if "alert" in wanted:
        for a in list_alerts("all", name, limit=limit):
            if a.fired_at >= since:
                out.append(
                    PerformanceEvent(
                        "alert", a.fired_at, a.target, a.severity, a.summary, a.alert_id
                    )  # fmt: skip
                )
    if "addm" in wanted:
        for an in list_addm(name):
            if an.created_at >= since:
                title = an.top_finding or "no finding above the threshold"
                sev = "warning" if an.top_finding else "info"
                out.append(
                    PerformanceEvent("addm", an.created_at, an.target, sev, title, an.analysis_id)
                )
    if "slow_sql" in wanted:
        for t in [name] if name else [x.name for x in list_targets()]:
            for e in list_sql_executions(
                t, begin=since, status="done", min_elapsed_s=min_elapsed_s, limit=limit
            ):
                text = " ".join((e.query or "").split())[:120]
                end = e.last_seen or e.query_start + timedelta(seconds=e.elapsed_s)
                out.append(
                    PerformanceEvent(
                        "slow_sql", end, t, "info", f"{e.elapsed_s:.1f} s: {text}", e.exec_id
                    )  # fmt: skip
                )
    out.sort(key=lambda ev: ev.at, reverse=True)
    return out[:limit]
