"""Self-healing checks on a schedule: one healing cycle per target whose self-healing mode is
not off (report-only journals what it would do, implement does it), and a weekly corruption
check (amcheck) of every target. Issues are logged (critical as errors) and published as an
artifact; every action is in the action journal."""

from __future__ import annotations

from prefect import flow, get_run_logger

from ops_core import api

from .common import artifact_key, publish_table, resolve_targets


@flow(
    name="self-healing",
    description="Self-healing checks of every target; acts as each target's self-healing mode "
    "allows (off: skipped, report-only: journaled, implement: done).",
)
def healing_flow(targets: list[str] | None = None, corruption: bool = False) -> dict:
    logger = get_run_logger()
    out: dict[str, dict] = {}
    for name in resolve_targets(targets):
        if corruption:
            c = api.check_corruption(name)
            (logger.error if c.corrupt else logger.info)(
                "%s: %s: %s checked, %s corrupt, %s skipped",
                name, c.method, c.checked, c.corrupt, c.skipped,
            )  # fmt: skip
            out[name] = {"checked": c.checked, "corrupt": c.corrupt}
            continue
        if api.autonomous_config(name).modes["self_healing"] == "off":
            logger.info("%s: self-healing is off, skipped", name)
            out[name] = {"mode": "off"}
            continue
        run = api.run_healing(name)
        for i in run.issues.issues:
            if i.severity == "critical":
                logger.error("%s: %s %s: %s", name, i.kind, i.object, i.summary)
            elif i.severity == "warning":
                logger.warning("%s: %s %s: %s", name, i.kind, i.object, i.summary)
        logger.info("%s: %s", name, run.summary)
        publish_table(
            artifact_key("self-healing", name),
            [
                {"issue": a.kind, "object": a.object, "action": a.action, "outcome": a.outcome}
                for a in run.actions
            ],
            f"Self-healing of {name} ({run.mode}): {run.summary}",
        )
        out[name] = {
            "mode": run.mode,
            "issues": len(run.issues.issues),
            "done": sum(1 for a in run.actions if a.outcome == "done"),
        }
    return out


@flow(
    name="self-tuning",
    description="Judge the parameter trials on the snapshots after them (rolling back what "
    "hurt), then, where self-tuning is implement and nothing is being measured, apply the "
    "recommended changes as new trials.",
)
def tuning_flow(targets: list[str] | None = None, tolerance_pct: float = 10.0) -> dict:
    logger = get_run_logger()
    out: dict[str, dict] = {}
    for name in resolve_targets(targets):
        mode = api.autonomous_config(name).modes["self_tuning"]
        if mode == "off":
            out[name] = {"mode": "off"}
            continue
        trials = api.evaluate_tuning(name, tolerance_pct)
        for tr in trials:
            if tr.status == "rolled_back" and tr.evaluated_at is not None:
                logger.warning("%s: %s rolled back: %s", name, tr.parameter, tr.note)
        new = []
        if not any(tr.status == "measuring" for tr in trials):
            new = api.apply_tuning(name)
        for tr in new:
            logger.info("%s: %s = %s (%s): %s", name, tr.parameter, tr.new_value, tr.status,
                        tr.reason)  # fmt: skip
        out[name] = {"mode": mode, "new_trials": len(new)}
    return out


@flow(
    name="auto-indexing",
    description="One auto-indexing cycle per target whose mode is not off: judge the indexes "
    "it built (drop what regressed or is unused), then candidates from the workload, costed, "
    "a set chosen under the budget and built (implement) or journaled (report-only).",
)
def indexing_flow(targets: list[str] | None = None, hours: float = 24.0) -> dict:
    logger = get_run_logger()
    out: dict[str, dict] = {}
    for name in resolve_targets(targets):
        if api.indexing_config(name).mode == "off":
            logger.info("%s: auto-indexing is off, skipped", name)
            out[name] = {"mode": "off"}
            continue
        run = api.run_indexing(name, hours)
        for s in run.steps:
            (logger.warning if s.outcome in ("regressed", "failed", "unused") else logger.info)(
                "%s: %s %s on %s: %s %s", name, s.action, s.index, s.table, s.outcome, s.detail
            )
        logger.info("%s: %s", name, run.summary)
        publish_table(
            artifact_key("auto-indexing", name),
            [
                {
                    "action": s.action,
                    "index": s.index,
                    "table": s.table,
                    "outcome": s.outcome,
                    "detail": s.detail,
                }
                for s in run.steps
            ],  # fmt: skip
            f"Auto-indexing of {name} ({run.mode}): {run.summary}",
        )
        out[name] = {"mode": run.mode, "chosen": len(run.candidates.chosen),
                     "done": sum(1 for s in run.steps if s.outcome == "done")}  # fmt: skip
    return out
