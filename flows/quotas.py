"""Quota evaluation, every alert interval: measure each quota, record breaches, enforce at the
hard limit where the quota and the target's policy allow, revert once back under."""

from __future__ import annotations

from prefect import flow, get_run_logger

from ops_core import api

from .common import publish_table


@flow(
    name="quotas",
    description="Measure every quota (sizes, connections) on every target; enforce a hard "
    "limit where asked and allowed (journaled) and revert it when back under.",
)
def quotas_flow(target: str | None = None) -> dict:
    logger = get_run_logger()
    run = api.evaluate_quotas(target)
    rows = []
    for r in run.results:
        if r.status in ("soft", "hard"):
            logger.warning("quota %s on %s: %s", r.quota, r.target, r.message)
        rows.append(
            {"target": r.target, "quota": r.quota, "status": r.status, "message": r.message}
        )
    publish_table("quotas-evaluation", rows, f"Quota evaluation at {run.evaluated_at:%F %T} UTC")
    return {
        "quotas": run.quotas,
        "breaches": run.breaches,
        "enforced": run.enforced,
        "reverted": run.reverted,
    }
