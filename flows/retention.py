"""Retention: snapshots (baselines kept), ASH partitions (two tiers), old rendered reports."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger

from ops_core import api
from ops_core.config import get_settings

from .common import publish_markdown


def purge_reports(days: int, reports_dir: Path | None = None) -> list[str]:
    """Delete rendered reports (html + executed notebook) older than ``days``."""
    root = Path(reports_dir or get_settings().reports_dir)
    if not root.exists():
        return []
    cutoff = time.time() - days * 86400
    removed = []
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".ipynb") and path.stat().st_mtime < cutoff:
            path.unlink()
            removed.append(str(path))
    return removed


@flow(
    name="retention",
    description="Purge snapshots, ASH partitions and reports older than "
    "the configured retention; baselines are kept.",
)
def retention_flow(snapshot_days: int | None = None, report_days: int | None = None) -> dict:
    logger = get_run_logger()
    s = get_settings()
    snaps = api.purge_snapshots(snapshot_days)
    ash = api.purge_ash()
    reports = purge_reports(report_days if report_days is not None else s.report_retention_days)
    logger.info(
        "retention: %s snapshots deleted, ASH %s, %s report files deleted", snaps, ash, len(reports)
    )
    publish_markdown(
        "retention-summary",
        f"Deleted {snaps} snapshots, {len(reports)} report files; ASH: {ash}",
        "What retention removed",
    )
    return {"snapshots_deleted": snaps, "ash": ash, "reports_deleted": len(reports)}
