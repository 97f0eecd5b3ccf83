"""Tune the top SQL of the day: a tuning task for the top N statements by total time over the
last day's snapshots of each target, executed (read-only runs, rolled back), the
recommendations published; plus keeping SQL Monitor executions from ASH and their retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger

from ops_core import api
from ops_core.errors import NotFound

from .common import artifact_key, publish_table, resolve_targets


@flow(
    name="sqltune-top",
    description="SQL Tuning Advisor on the top N statements of the last day of each target; "
    "measured recommendations are published as a table.",
)
def sqltune_top_flow(
    targets: list[str] | None = None, top: int = 10, runs: int = 3, clone: str | None = None
) -> dict:
    logger = get_run_logger()
    out: dict[str, int] = {}
    for name in resolve_targets(targets):
        try:
            b, e = api.snapshot_bounds(name, datetime.now(UTC) - timedelta(days=1))
        except NotFound as exc:
            logger.info("%s: no snapshot range in the last day (%s)", name, exc)
            continue
        task = api.create_tuning_task(name, top=top, begin_id=b, end_id=e, clone=clone)
        api.execute_tuning_task(task.task_id, runs=runs, progress=logger.info)
        recs = api.tuning_recommendations(task.task_id)
        rows = [
            {
                "rec": r.rec_id,
                "statement": r.seq,
                "type": r.type,
                "sql": r.sql or "",
                "method": r.method or "",
                "speedup": r.measured_speedup,
                "why_not": r.why_not or "",
            }
            for r in recs
            if r.type in ("index", "statistics", "rewrite", "setting")
        ]
        publish_table(
            artifact_key("sqltune", name),
            rows,
            f"SQL Tuning Advisor task {task.task_id} on {name}: top {top} of snapshots {b}-{e}",
        )
        out[name] = task.task_id
    return out


@flow(name="sqlmon-keep", description="Keep SQL Monitor executions from ASH; apply retention.")
def sqlmon_keep_flow(targets: list[str] | None = None) -> dict:
    out = {name: api.capture_sql_monitor(name) for name in resolve_targets(targets)}
    out["_purged"] = api.purge_sql_monitor()
    return out
