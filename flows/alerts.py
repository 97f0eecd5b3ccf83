"""Alert evaluation, every minute: every enabled rule on every target; what fired and what
resolved is logged (a WARNING per new alert) and published as an artifact."""

from __future__ import annotations

from prefect import flow, get_run_logger

from ops_core import api

from .common import publish_table


@flow(
    name="alerts",
    description="Evaluate the alert rules on every target: open, keep and resolve alerts "
    "and send their notifications (webhook, e-mail).",
)
def alerts_flow(target: str | None = None) -> dict:
    logger = get_run_logger()
    run = api.evaluate_alerts(target)
    rows = []
    for r in run.results:
        if r.message.startswith("fired:"):
            logger.warning("alert %s: %s", r.alert_id, r.message)
        elif r.status == "resolved":
            logger.info("alert %s: %s", r.alert_id, r.message)
        for n in r.notifications:
            if not n["ok"]:
                logger.error(
                    "alert %s: %s to %s failed after %s attempts: %s",
                    r.alert_id, n["channel"], n["destination"], n["attempts"], n["error"],
                )  # fmt: skip
        if r.status not in ("ok", "learning"):
            rows.append(
                {"rule": r.rule, "target": r.target, "status": r.status, "message": r.message}
            )
    publish_table("alerts-evaluation", rows, f"Alert evaluation at {run.evaluated_at:%F %T} UTC")
    return {
        "targets": run.targets,
        "rules": run.rules,
        "fired": run.fired,
        "resolved": run.resolved,
        "notifications": run.notifications,
        "failed_notifications": run.failed_notifications,
    }
