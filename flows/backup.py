"""Backup flows: full and incremental backups, verification, retention and WAL receiving per
target, each on the schedule stored for the target (`opscore backup schedule`). Thin over
ops_core.api: every flow is one API call plus logging; ``backup_deployments()`` builds the
Prefect deployments from the stored schedules (validated there)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from prefect import flow
from prefect.deployments.runner import RunnerDeployment

from ops_core import api
from ops_core.backup.schedule import parse_when


def _logger() -> Any:
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # noqa: BLE001 - called outside a flow run (tests, scripts)
        return logging.getLogger("opscore.flows.backup")


@flow(name="backup", description="Take a full or incremental physical backup of a target.")
def backup_flow(target: str, kind: str = "full") -> dict:
    b = api.take_full_backup(target) if kind == "full" else api.take_incremental_backup(target)
    _logger().info(
        "%s backup %s of %s: %s bytes in %s s",
        b.kind,
        b.backup_id,
        target,
        b.size_bytes,
        b.duration_s,
    )
    return b.as_dict()


@flow(name="backup-verify", description="Verify the target's unverified backups.")
def backup_verify_flow(target: str, test_restore: bool = True) -> list[dict]:
    """pg_verifybackup on every finished, not yet verified backup; a test restore of the
    newest physical one."""
    todo = [b for b in api.list_backups(target) if b.status == "done"]
    newest_physical = next((b.backup_id for b in reversed(todo) if b.physical), None)
    out = []
    for b in todo:
        rep = api.verify_backup(
            b.backup_id, test_restore=test_restore and b.backup_id == newest_physical
        )
        (_logger().info if rep.ok else _logger().error)(
            "verify %s: %s", b.backup_id, "ok" if rep.ok else f"damaged {rep.bad_files}"
        )
        out.append(rep.as_dict())
    return out


@flow(name="backup-retention", description="Apply the target's retention policy.")
def backup_retention_flow(target: str) -> dict:
    plan = api.apply_retention(target, dry_run=False)
    _logger().info(
        "retention %s: deleted %s, %s WAL segments", target, plan.delete_ids, len(plan.wal_delete)
    )
    return plan.as_dict()


@flow(name="backup-wal", description="Receive WAL of a target into its backup store.")
def wal_receive_flow(target: str) -> dict:
    st = api.receive_wal(target)
    if st.gaps:
        _logger().error("WAL archive of %s has gaps: %s", target, [g.as_dict() for g in st.gaps])
    return st.as_dict()


@flow(
    name="backup-wal-stream",
    description="Archive a target's WAL continuously (pg_receivewal on a slot) for a while.",
)
def wal_stream_flow(target: str, duration_s: float = 3600, max_retained_mb: int = 1024) -> dict:
    """Run the continuous WAL stream for ``duration_s`` (deploy it on an interval equal to the
    duration, with concurrency 1, so one stream is always running); guard the slot first so a
    stream that was down for long cannot have filled the target's disk."""
    limit = max_retained_mb * 1024 * 1024
    guard = api.guard_wal_slot(target, max_retained_bytes=limit)
    if guard["dropped"]:
        _logger().error("WAL slot %s of %s dropped (held too much WAL)", guard["slot"], target)
    state = api.stream_wal(
        target,
        duration=duration_s,
        max_retained_bytes=limit,
        on_event=lambda e: (_logger().info if e["kind"] == "info" else _logger().warning)(
            "%s: %s", e["kind"], e["message"]
        ),
    )
    return {"guard": guard, "restarts": state["restarts"], "events": state["events"]}


JOB_FLOWS = {
    "full": (backup_flow, {"kind": "full"}),
    "incremental": (backup_flow, {"kind": "incremental"}),
    "verify": (backup_verify_flow, {}),
    "retention": (backup_retention_flow, {}),
    "wal": (wal_receive_flow, {}),
    "stream": (wal_stream_flow, {}),
}


def backup_deployments(targets: list[str] | None = None) -> list[RunnerDeployment]:
    """One deployment per scheduled job per target (``backup-full-<target>``, ...)."""
    names = targets or [t.name for t in api.list_targets()]
    out = []
    for name in names:
        sched = api.get_backup_schedule(name)
        for job, when in sched.jobs.items():
            fl, params = JOB_FLOWS[job]
            spec = parse_when(job, when)
            timing: dict[str, Any] = (
                {"cron": spec["cron"]}
                if "cron" in spec
                else {"interval": timedelta(seconds=spec["interval_s"])}
            )
            if job == "stream":  # each run streams for the interval, the next follows
                params = {**params, "duration_s": spec["interval_s"]}
            out.append(
                fl.to_deployment(
                    name=f"backup-{job}-{name}",
                    parameters={"target": name, **params},
                    tags=["opscore", "backup"],
                    concurrency_limit=1,
                    **timing,
                )
            )
    return out
