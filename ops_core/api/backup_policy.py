"""Backup retention, schedules and the catalog report (re-exported by ``api.backup``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import repository
from ..backup import catalog, retention, runner, schedule, wal
from ..backup.retention import RetentionPlan
from ..backup.schedule import BackupSchedule
from ..errors import InvalidInput
from .targets import get_target, list_targets

__all__ = [
    "BACKUP_JOBS",
    "DEFAULT_BACKUP_SCHEDULE",
    "RetentionPlan",
    "BackupSchedule",
    "BackupReport",
    "apply_retention",
    "get_backup_schedule",
    "set_backup_schedule",
    "backup_report",
]


#: the schedulable backup jobs, and the recommended schedule (set_backup_schedule defaults)
BACKUP_JOBS = schedule.JOBS
DEFAULT_BACKUP_SCHEDULE = dict(schedule.DEFAULT_SCHEDULE)


def _store(conn: Any, target: Any) -> Any:
    from .backup import _store_for

    return _store_for(conn, target)


def _seg_size(backups: list[catalog.Backup]) -> int:
    return next(
        (b.wal_segment_size for b in reversed(backups) if b.wal_segment_size),
        wal.DEFAULT_SEGMENT_SIZE,
    )


# ---------------------------------------------------------------- retention
def apply_retention(
    target: str,
    *,
    redundancy: int | None = None,
    recovery_window_days: float | None = None,
    dry_run: bool = True,
    now: datetime | None = None,
) -> RetentionPlan:
    """Evaluate retention (the given policies, else the target's configured ones) and, unless
    ``dry_run``, delete what goes: backups (children before their base) and old WAL."""
    t = get_target(target)
    with repository.session() as conn:
        runner.reap_stale(conn, t.target_id)
        cfg = catalog.get_config(conn, t.target_id)
        given = {"redundancy": redundancy, "recovery_window_days": recovery_window_days}
        policies = retention.policies_from(
            given if any(v is not None for v in given.values()) else cfg.retention
        )
        backups = catalog.list_backups(conn, t.target_id)
        store = _store(conn, t)
        archive = wal.scan(store.wal_dir, _seg_size(backups))
        plan = retention.plan(backups, policies, now or datetime.now(UTC), archive)
        plan.dry_run = dry_run
        if dry_run:
            return plan
        by_id = {b.backup_id: b for b in backups}
        for d in plan.delete:
            b = by_id[d["backup_id"]]
            path = Path(b.path)
            if path.is_relative_to(store.root) and path.exists():
                store.remove(path)
            catalog.delete(conn, [b.backup_id])
        for name in plan.wal_delete:
            (store.wal_dir / name).unlink(missing_ok=True)
        return plan


# ---------------------------------------------------------------- schedules
def get_backup_schedule(target: str) -> BackupSchedule:
    """The target's backup jobs (cron or interval) and retention policy."""
    t = get_target(target)
    with repository.session() as conn:
        cfg = catalog.get_config(conn, t.target_id)
    return BackupSchedule(t.name, dict(cfg.schedule), dict(cfg.retention))


def set_backup_schedule(
    target: str,
    jobs: dict[str, str | None] | None = None,
    *,
    redundancy: int | None = None,
    recovery_window_days: float | None = None,
    defaults: bool = False,
) -> BackupSchedule:
    """Set jobs (``{"full": "0 1 * * 0", "incremental": "every 1d", "verify": None, ...}``;
    None removes a job) and retention. ``defaults`` starts from the recommended schedule.
    Everything is validated before anything is stored."""
    t = get_target(target)
    with repository.session() as conn:
        cfg = catalog.get_config(conn, t.target_id)
        merged: dict[str, str | None] = dict(cfg.schedule)
        if defaults:
            merged.update(schedule.DEFAULT_SCHEDULE)
        merged.update(jobs or {})
        valid = schedule.validate(merged)
        ret = dict(cfg.retention)
        if redundancy is not None:
            ret["redundancy"] = redundancy
        if recovery_window_days is not None:
            ret["recovery_window_days"] = recovery_window_days
        retention.policies_from(ret)  # validates
        if "retention" in valid and not ret:
            raise InvalidInput(
                "A retention job is scheduled but no retention policy is set.",
                "Add --redundancy N and/or --recovery-window-days D.",
            )
        cfg.schedule, cfg.retention = valid, ret
        catalog.set_config(conn, cfg)
    return BackupSchedule(t.name, valid, ret)


# ---------------------------------------------------------------- report
@dataclass
class BackupReport:
    target: str
    store: str
    backups: list[dict[str, Any]]
    chains: list[dict[str, Any]]
    totals: dict[str, Any]
    wal: dict[str, Any]
    recoverability: dict[str, Any]
    restore_points: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _recoverability(
    backups: list[catalog.Backup], archive: wal.ArchiveContents, state: dict[str, Any]
) -> dict[str, Any]:
    usable = [b for b in backups if b.physical and b.usable and b.stop_lsn]
    if not usable:
        return {"earliest": None, "latest": None, "note": "no usable physical backup"}
    first, last = usable[0], usable[-1]
    latest_lsn = wal.parse_lsn(last.stop_lsn or "0/0")
    latest_time = last.finished_at
    note = "to the end of the newest backup"
    if last.timeline is not None and last.start_lsn:
        seg = archive.seg_size
        end = archive.continuous_from(last.timeline, wal.segno_of(last.start_lsn, seg))
        received = state.get("received_until")
        if end is not None:
            # the receiver says how far it got; without that, only the segments before the
            # newest one are known to be complete (a conservative bound, time unknown)
            if received and wal.segno_of(received, seg) <= end:
                candidate, when = wal.parse_lsn(received), state.get("at")
            else:
                candidate, when = end * seg, None
            if candidate > latest_lsn:
                latest_lsn = candidate
                latest_time = datetime.fromisoformat(when) if when else None
                note = "through archived WAL, as of the last WAL receipt"
    return {
        "earliest": {
            "time": first.finished_at.isoformat() if first.finished_at else None,
            "lsn": first.stop_lsn,
            "backup_id": first.backup_id,
        },
        "latest": {
            "time": latest_time.isoformat() if latest_time else None,
            "lsn": wal.format_lsn(latest_lsn),
        },
        "note": note,
    }


def _report_one(conn: Any, t: Any) -> BackupReport:
    backups = catalog.list_backups(conn, t.target_id)
    store = _store(conn, t)
    archive = wal.scan(store.wal_dir, _seg_size(backups))
    state = wal.read_state(store.wal_dir)
    by_id = {b.backup_id: b for b in backups}

    def root(b: catalog.Backup) -> str:
        while b.parent_id and b.parent_id in by_id:
            b = by_id[b.parent_id]
        return b.backup_id

    rows, chains = [], {}
    for b in backups:
        last = catalog.checks(conn, b.backup_id)
        rows.append(
            {
                "backup_id": b.backup_id,
                "kind": b.kind,
                "status": b.status,
                "parent_id": b.parent_id,
                "chain": root(b) if b.physical else None,
                "database": b.database,
                "size_bytes": b.size_bytes,
                "duration_s": b.duration_s,
                "started_at": b.started_at.isoformat(),
                "finished_at": b.finished_at.isoformat() if b.finished_at else None,
                "stop_lsn": b.stop_lsn,
                "verification": (
                    {
                        "kind": last[-1].kind,
                        "ok": last[-1].ok,
                        "at": last[-1].checked_at.isoformat(),
                    }
                    if last
                    else None
                ),
                "error": b.error,
            }
        )
        if b.physical and b.status != "failed":
            c = chains.setdefault(root(b), {"full": root(b), "members": [], "size_bytes": 0})
            c["members"].append(b.backup_id)
            c["size_bytes"] += b.size_bytes or 0
    by_status: dict[str, int] = {}
    for b in backups:
        by_status[b.status] = by_status.get(b.status, 0) + 1
    totals = {
        "backups": len(backups),
        "by_status": by_status,
        "size_bytes": sum(b.size_bytes or 0 for b in backups),
        "wal_segments": archive.size_summary(),
    }
    return BackupReport(
        target=t.name,
        store=str(store.root),
        backups=rows,
        chains=list(chains.values()),
        totals=totals,
        wal={"gaps": [g.as_dict() for g in archive.gaps()], "last_received": state},
        recoverability=_recoverability(backups, archive, state),
        restore_points=[p.as_dict() for p in catalog.restore_points(conn, t.target_id)],
    )


def backup_report(target: str | None = None) -> list[BackupReport]:
    """Per target: backups with chains, sizes, durations, verification, WAL gaps and the
    recoverability window (earliest and latest point one can restore to)."""
    targets = [get_target(target)] if target else list_targets()
    with repository.session() as conn:
        return [_report_one(conn, t) for t in targets]
