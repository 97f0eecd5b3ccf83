"""Daily retrain of every target's anomaly model, then detection over the last day (each
alert linked to an ADDM analysis of its interval)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger, task

from ops_core import api
from ops_core.errors import OpsCoreError

from .common import publish_markdown


@task(name="retrain-target", retries=1, retry_delay_seconds=60)
def retrain_target(target: str) -> dict:
    m = api.train_ml(target)
    since = datetime.now(UTC) - timedelta(days=1)
    found = api.ml_anomalies(target, since)
    return {
        "target": target,
        "version": m.version,
        "points": m.points,
        "enough_history": m.enough_history,
        "notes": m.notes,
        "alerts": int((found["severity"] == "alert").sum()) if len(found) else 0,
    }


@flow(
    name="ml-retrain",
    description="Retrain each target's anomaly model (the previous "
    "version is kept for rollback) and detect anomalies over the last day.",
)
def ml_retrain_flow(targets: list[str] | None = None) -> list[dict]:
    logger = get_run_logger()
    names = targets or [t.name for t in api.list_targets()]
    out = []
    for name in names:
        try:
            r = retrain_target(name)
        except OpsCoreError as e:
            logger.warning("retrain of %s failed: %s", name, e)
            out.append({"target": name, "error": str(e)})
            continue
        for n in r["notes"]:
            logger.info("%s: %s", name, n)
        (logger.warning if r["alerts"] else logger.info)(
            "%s: model v%s on %s intervals, %s alert(s) in the last day",
            name,
            r["version"],
            r["points"],
            r["alerts"],
        )
        out.append(r)
    lines = [
        "| target | version | intervals | enough history | alerts (last day) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['target']} | {r.get('version', '-')} | {r.get('points', '-')} | "
        f"{r.get('enough_history', '-')} | {r.get('alerts', r.get('error', '-'))} |"
        for r in out
    ]
    publish_markdown("ml-retrain-summary", "\n".join(lines), "Anomaly models retrained")
    return out
