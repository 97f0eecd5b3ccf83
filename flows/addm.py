"""ADDM after each snapshot: analyse the last interval, log what stands out prominently."""

from __future__ import annotations

from prefect import flow, get_run_logger

from ops_core import api
from ops_core.config import get_settings

from .common import artifact_key, publish_table


@flow(
    name="addm",
    description="Analyse a snapshot range of a target (default: its last "
    "interval); findings above the severity threshold are logged as errors.",
)
def addm_flow(
    target: str,
    begin_id: int | None = None,
    end_id: int | None = None,
    severity_pct: float | None = None,
) -> dict:
    logger = get_run_logger()
    threshold = get_settings().addm_alert_pct if severity_pct is None else severity_pct
    analysis = api.run_addm(target, begin_id, end_id)
    rows = []
    for f in analysis.findings:
        rows.append(
            {
                "rank": f.rank,
                "finding": f.title,
                "type": f.type,
                "impact_pct": round(f.impact_pct, 1),
                "db_time_s": round(f.impact_db_time_s, 1),
                "action": f.recommendations[0].action if f.recommendations else "",
            }
        )
        if f.is_problem and f.score >= threshold:
            # a warning, not an error: the run succeeded; what it found stands out in the UI
            logger.warning("ADDM %s: %s (%.1f %% of DB time)", target, f.title, f.impact_pct)
        else:
            logger.info("ADDM %s: %s (%.1f %%)", target, f.title, f.impact_pct)
    publish_table(
        artifact_key("addm", target),
        rows,
        f"ADDM {target} snapshots {analysis.begin_snapshot_id}-"
        f"{analysis.end_snapshot_id}: DB time {analysis.db_time_s:.1f} s",
    )
    return {
        "analysis_id": analysis.analysis_id,
        "top_finding": analysis.top_finding,
        "findings": len(analysis.findings),
    }
