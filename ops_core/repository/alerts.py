"""Repository side of alerts (migration 0012): rules, per rule/target evaluation state, alerts
and notification deliveries; plus the freshness reads alerts and health share (last snapshot,
last ASH flush, newest ADDM analysis, newest backup)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import InvalidInput, NotFound

__all__ = [
    "Rule",
    "Alert",
    "Notification",
    "RULE_FIELDS",
    "insert_rule",
    "update_rule",
    "delete_rule",
    "get_rule",
    "list_rules",
    "get_state",
    "put_state",
    "open_alert",
    "insert_alert",
    "touch_alert",
    "set_alert_status",
    "get_alert",
    "list_alerts",
    "record_notification",
    "notifications",
    "undelivered",
    "EVALUATION_LOCK",
    "last_snapshot",
    "ash_status",
    "newest_addm",
    "newest_backup",
]

EVALUATION_LOCK = 0x6F70616C657274  # "opalert": one evaluation at a time per repository

RULE_FIELDS = (
    "name",
    "target_id",
    "kind",
    "metric",
    "op",
    "value",
    "for_s",
    "clear_for_s",
    "severity",
    "enabled",
    "channels",
    "description",
    "builtin",
)


@dataclass
class Rule:
    rule_id: int
    name: str
    target_id: int | None
    target: str | None  # None: every target
    kind: str
    metric: str
    op: str
    value: float
    for_s: int
    clear_for_s: int
    severity: str
    enabled: bool
    channels: list[dict[str, Any]]
    description: str
    builtin: bool
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Alert:
    alert_id: int
    rule_id: int
    rule: str
    target_id: int
    target: str
    status: str
    severity: str
    summary: str
    value: float | None
    details: dict[str, Any]
    fired_at: datetime
    last_seen_at: datetime
    flaps: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    notifications: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Notification:
    notification_id: int
    alert_id: int
    event: str
    channel: str
    destination: str
    attempts: int
    ok: bool
    response: str | None
    error: str | None
    created_at: datetime
    delivered_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_RULE_SELECT = (
    "SELECT r.rule_id, r.name, r.target_id, t.name AS target, r.kind, r.metric, r.op, r.value, "
    "r.for_s, r.clear_for_s, r.severity, r.enabled, r.channels, r.description, r.builtin, "
    "r.created_at, r.updated_at FROM opscore.alert_rules r "
    "LEFT JOIN opscore.targets t ON t.target_id = r.target_id"
)


def _jsonify(values: dict[str, Any]) -> dict[str, Any]:
    return {k: Jsonb(v) if k == "channels" else v for k, v in values.items()}


def insert_rule(conn: psycopg.Connection, values: dict[str, Any]) -> Rule:
    cols = [c for c in RULE_FIELDS if c in values]
    try:
        with conn.transaction():
            row = conn.execute(
                f"INSERT INTO opscore.alert_rules ({', '.join(cols)}) "
                f"VALUES ({', '.join('%s' for _ in cols)}) RETURNING rule_id",
                [_jsonify(values)[c] for c in cols],
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise InvalidInput(
            f"An alert rule named {values['name']!r} already exists.",
            "Pick another name, or update that rule (`opscore alert rule update`).",
        ) from None
    assert row is not None
    return get_rule(conn, row[0])


def update_rule(conn: psycopg.Connection, rule_id: int, values: dict[str, Any]) -> Rule:
    cols = [c for c in RULE_FIELDS if c in values]
    if cols:
        sets = ", ".join(f"{c} = %s" for c in cols)
        with conn.transaction():
            conn.execute(
                f"UPDATE opscore.alert_rules SET {sets}, updated_at = now() WHERE rule_id = %s",
                [*(_jsonify(values)[c] for c in cols), rule_id],
            )
            # a changed condition starts its pending/clearing clocks afresh
            conn.execute("DELETE FROM opscore.alert_state WHERE rule_id = %s", (rule_id,))
    return get_rule(conn, rule_id)


def delete_rule(conn: psycopg.Connection, rule_id: int) -> Rule:
    rule = get_rule(conn, rule_id)
    with conn.transaction():
        conn.execute("DELETE FROM opscore.alert_rules WHERE rule_id = %s", (rule_id,))
    return rule


def get_rule(conn: psycopg.Connection, rule: int | str) -> Rule:
    where = "r.rule_id = %s" if isinstance(rule, int) else "r.name = %s"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"{_RULE_SELECT} WHERE {where}", (rule,))
        row = cur.fetchone()
    if row is None:
        raise NotFound(
            f"There is no alert rule {rule!r}.", "List the rules with `opscore alert rule list`."
        )
    return Rule(**row)


def list_rules(
    conn: psycopg.Connection, target_id: int | None = None, enabled: bool | None = None
) -> list[Rule]:
    where, args = ["true"], []
    if target_id is not None:
        where.append("(r.target_id = %s OR r.target_id IS NULL)")
        args.append(target_id)
    if enabled is not None:
        where.append("r.enabled = %s")
        args.append(enabled)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"{_RULE_SELECT} WHERE {' AND '.join(where)} ORDER BY r.rule_id", args)
        return [Rule(**r) for r in cur.fetchall()]


# ------------------------------------------------------------------------------- state
def get_state(conn: psycopg.Connection, rule_id: int, target_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT pending_since, clear_since, last_value, last_at FROM opscore.alert_state "
            "WHERE rule_id = %s AND target_id = %s",
            (rule_id, target_id),
        )
        return cur.fetchone() or {
            "pending_since": None,
            "clear_since": None,
            "last_value": None,
            "last_at": None,
        }


def put_state(conn: psycopg.Connection, rule_id: int, target_id: int, **s: Any) -> None:
    conn.execute(
        "INSERT INTO opscore.alert_state AS s (rule_id, target_id, pending_since, clear_since, "
        " last_value, last_at, last_status, last_message, evaluated_at) "
        "VALUES (%(r)s, %(t)s, %(pending_since)s, %(clear_since)s, %(last_value)s, %(last_at)s, "
        " %(last_status)s, %(last_message)s, now()) "
        "ON CONFLICT (rule_id, target_id) DO UPDATE SET pending_since = excluded.pending_since, "
        " clear_since = excluded.clear_since, last_value = excluded.last_value, "
        " last_at = excluded.last_at, last_status = excluded.last_status, "
        " last_message = excluded.last_message, evaluated_at = now()",
        {"r": rule_id, "t": target_id, **s},
    )


# ------------------------------------------------------------------------------ alerts
_ALERT_SELECT = (
    "SELECT a.alert_id, a.rule_id, r.name AS rule, a.target_id, t.name AS target, a.status, "
    "a.severity, a.summary, a.value, a.details, a.fired_at, a.last_seen_at, a.flaps, "
    "a.acknowledged_at, a.acknowledged_by, a.resolved_at, a.resolved_by "
    "FROM opscore.alerts a JOIN opscore.alert_rules r USING (rule_id) "
    "JOIN opscore.targets t ON t.target_id = a.target_id"
)


def open_alert(conn: psycopg.Connection, rule_id: int, target_id: int) -> Alert | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"{_ALERT_SELECT} WHERE a.rule_id = %s AND a.target_id = %s AND a.status <> 'resolved'",
            (rule_id, target_id),
        )
        row = cur.fetchone()
    return Alert(**row) if row else None


def insert_alert(
    conn: psycopg.Connection,
    rule: Rule,
    target_id: int,
    summary: str,
    value: float | None,
    details: dict[str, Any],
) -> int | None:
    """A new firing alert, or None when one is already open (the dedupe index)."""
    row = conn.execute(
        "INSERT INTO opscore.alerts (rule_id, target_id, status, severity, summary, value, "
        "details) VALUES (%s, %s, 'firing', %s, %s, %s, %s) "
        "ON CONFLICT (rule_id, target_id) WHERE status <> 'resolved' DO NOTHING "
        "RETURNING alert_id",
        (rule.rule_id, target_id, rule.severity, summary, value, Jsonb(details)),
    ).fetchone()
    return row[0] if row else None


def touch_alert(
    conn: psycopg.Connection,
    alert_id: int,
    value: float | None,
    summary: str,
    details: dict[str, Any],
    flapped: bool,
) -> None:
    conn.execute(
        "UPDATE opscore.alerts SET last_seen_at = now(), value = %s, summary = %s, details = %s, "
        "flaps = flaps + %s WHERE alert_id = %s",
        (value, summary, Jsonb(details), int(flapped), alert_id),
    )


def set_alert_status(
    conn: psycopg.Connection, alert_id: int, status: str, by: str, allowed_from: tuple[str, ...]
) -> Alert:
    col = "acknowledged" if status == "acknowledged" else "resolved"
    with conn.transaction():
        current = get_alert(conn, alert_id)
        if current.status not in allowed_from:
            raise InvalidInput(
                f"Alert {alert_id} is {current.status}; it cannot become {status}.",
                "Only a firing alert can be acknowledged; a resolved alert stays resolved.",
            )
        conn.execute(
            f"UPDATE opscore.alerts SET status = %s, {col}_at = now(), {col}_by = %s "
            "WHERE alert_id = %s",
            (status, by, alert_id),
        )
    return get_alert(conn, alert_id)


def get_alert(conn: psycopg.Connection, alert_id: int) -> Alert:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"{_ALERT_SELECT} WHERE a.alert_id = %s", (alert_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFound(
            f"There is no alert {alert_id}.", "List alerts with `opscore alert list --all`."
        )
    alert = Alert(**row)
    alert.notifications = [n.as_dict() for n in notifications(conn, alert_id)]
    return alert


def list_alerts(
    conn: psycopg.Connection,
    statuses: tuple[str, ...],
    target_id: int | None = None,
    severity: str | None = None,
    limit: int = 200,
) -> list[Alert]:
    where, args = ["a.status = ANY(%s)"], [list(statuses)]
    if target_id is not None:
        where.append("a.target_id = %s")
        args.append(target_id)
    if severity is not None:
        where.append("a.severity = %s")
        args.append(severity)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"{_ALERT_SELECT} WHERE {' AND '.join(where)} ORDER BY a.fired_at DESC, "
            "a.alert_id DESC LIMIT %s",
            [*args, limit],
        )
        return [Alert(**r) for r in cur.fetchall()]


def record_notification(conn: psycopg.Connection, alert_id: int, **n: Any) -> None:
    conn.execute(
        "INSERT INTO opscore.alert_notifications (alert_id, event, channel, destination, "
        "attempts, ok, response, error, delivered_at) VALUES (%(alert_id)s, %(event)s, "
        "%(channel)s, %(destination)s, %(attempts)s, %(ok)s, %(response)s, %(error)s, "
        "CASE WHEN %(ok)s THEN now() END)",
        {"alert_id": alert_id, **n},
    )


def notifications(conn: psycopg.Connection, alert_id: int | None = None) -> list[Notification]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT notification_id, alert_id, event, channel, destination, attempts, ok, "
            "response, error, created_at, delivered_at FROM opscore.alert_notifications "
            "WHERE %(a)s::bigint IS NULL OR alert_id = %(a)s ORDER BY notification_id",
            {"a": alert_id},
        )
        return [Notification(**r) for r in cur.fetchall()]


def undelivered(conn: psycopg.Connection, max_tries: int) -> list[dict[str, Any]]:
    """(alert, event, channel, destination) never delivered, tried fewer than ``max_tries``
    times, of alerts fired in the last day."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT n.alert_id, n.event, n.channel, n.destination, count(*) AS tries "
            "FROM opscore.alert_notifications n JOIN opscore.alerts a USING (alert_id) "
            "WHERE a.fired_at > now() - interval '1 day' "
            "GROUP BY 1, 2, 3, 4 HAVING NOT bool_or(n.ok) AND count(*) < %s "
            "ORDER BY 1, 2",
            (max_tries,),
        )
        return cur.fetchall()


# --------------------------------------------------------------------------- freshness
def last_snapshot(conn: psycopg.Connection, target_id: int) -> dict[str, Any] | None:
    """The newest snapshot (any status) and the newest good one."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT max(captured_at) AS last_at, "
            "max(captured_at) FILTER (WHERE status <> 'failed') AS last_ok_at, "
            "(array_agg(status ORDER BY captured_at DESC))[1] AS last_status, "
            "(array_agg(error ORDER BY captured_at DESC))[1] AS last_error "
            "FROM opscore.snapshots WHERE target_id = %s",
            (target_id,),
        )
        row = cur.fetchone()
    return row if row and row["last_at"] else None


def ash_status(conn: psycopg.Connection, target_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT last_sample_time, last_flush_at, errors, last_error "
            "FROM opscore.ash_sampler_status WHERE target_id = %s",
            (target_id,),
        )
        return cur.fetchone()


def newest_addm(conn: psycopg.Connection, target_id: int) -> dict[str, Any] | None:
    """The newest ADDM analysis of a target with its findings (rank, title, impact)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT a.analysis_id, a.created_at, a.begin_at, a.end_at, "
            "coalesce(jsonb_agg(jsonb_build_object('rank', f.rank, 'title', f.title, "
            " 'type', f.type, 'impact_pct', f.impact_pct) ORDER BY f.rank) "
            " FILTER (WHERE f.rank IS NOT NULL), '[]') AS findings "
            "FROM (SELECT * FROM opscore.addm_analyses WHERE target_id = %s "
            "      ORDER BY created_at DESC, analysis_id DESC LIMIT 1) a "
            "LEFT JOIN opscore.addm_findings f USING (analysis_id) "
            "GROUP BY a.analysis_id, a.created_at, a.begin_at, a.end_at",
            (target_id,),
        )
        return cur.fetchone()


def newest_backup(conn: psycopg.Connection, target_id: int) -> dict[str, Any] | None:
    """The newest usable physical backup, and the newest attempt of any kind."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT max(started_at) FILTER (WHERE kind IN ('full', 'incremental') "
            "  AND status IN ('done', 'verified')) AS last_ok_started_at, "
            "max(finished_at) FILTER (WHERE kind IN ('full', 'incremental') "
            "  AND status IN ('done', 'verified')) AS last_ok_finished_at, "
            "(array_agg(status ORDER BY started_at DESC))[1] AS last_status, "
            "(array_agg(backup_id ORDER BY started_at DESC))[1] AS last_backup_id, "
            "count(*) AS backups FROM opscore.backups WHERE target_id = %s",
            (target_id,),
        )
        row = cur.fetchone()
    return row if row and row["backups"] else None
