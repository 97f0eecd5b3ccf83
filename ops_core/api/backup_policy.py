"""Backup retention, schedules and the catalog report (exported from ``ops_core.api``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import repository
from ..backup import binaries, catalog, retention, runner, schedule, wal, walcheck
from ..backup.retention import RetentionPlan
from ..backup.schedule import BackupSchedule
from ..backup.store import BackupStore
from ..errors import InvalidInput, OpsCoreError
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


def _store(conn: Any, target: Any) -> BackupStore:
    return catalog.store_for(conn, target.target_id, target.name)


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
            walcheck.checksum_path(store.wal_dir, name).unlink(missing_ok=True)
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
    backups: list[catalog.Backup], check: walcheck.ArchiveCheck | None
) -> dict[str, Any]:
    """The recoverable windows: each usable backup's end, through the readable WAL that
    follows it without a gap or damaged segment. Backups sharing a run of WAL share a window;
    a gap or a damaged segment ends one (the piece after it needs a backup taken after it)."""
    usable = [b for b in backups if b.physical and b.usable and b.stop_lsn]
    if not usable:
        return {
            "earliest": None,
            "latest": None,
            "windows": [],
            "note": "no usable physical backup",
        }
    windows: list[dict[str, Any]] = []
    by_run: dict[int, dict[str, Any]] = {}
    for b in usable:
        run = None
        if check is not None and b.timeline is not None and b.start_lsn:
            run = check.run_for(b.timeline, wal.segno_of(b.start_lsn, check.seg_size))
            if run is not None and run.end_lsn < wal.parse_lsn(b.stop_lsn or "0/0"):
                run = None
        start = {
            "time": b.finished_at.isoformat() if b.finished_at else None,
            "lsn": b.stop_lsn,
            "backup_id": b.backup_id,
            "bound": f"end of backup {b.backup_id}",
        }
        if run is None:
            windows.append(
                {
                    "from": start,
                    "to": {**start, "bound": "no archived WAL after this backup"},
                    "backups": [b.backup_id],
                }
            )
            continue
        if id(run) in by_run:
            by_run[id(run)]["backups"].append(b.backup_id)
            continue
        last = run.last_xact_time()
        w = {
            "from": start,
            "to": {
                "time": last.isoformat() if last else start["time"],
                "lsn": wal.format_lsn(run.end_lsn),
                "bound": run.end_detail,
                "ended_by": run.ended_by,
            },
            "backups": [b.backup_id],
        }
        by_run[id(run)] = w
        windows.append(w)
    windows.sort(key=lambda w: w["from"]["time"] or "")
    note = (
        f"{len(windows)} separate windows: a gap or a damaged WAL segment splits them"
        if len(windows) > 1
        else "one window" + (" through archived WAL" if by_run else " (backup end only)")
    )
    first, last_w = windows[0], windows[-1]
    return {
        "earliest": {
            "time": first["from"]["time"],
            "lsn": first["from"]["lsn"],
            "backup_id": first["from"]["backup_id"],
        },
        "latest": {"time": last_w["to"]["time"], "lsn": last_w["to"]["lsn"]},
        "windows": windows,
        "note": note,
    }


def _archive_check(store: Any, backups: list[catalog.Backup]) -> walcheck.ArchiveCheck | None:
    versions = [b.server_version_num for b in backups if b.physical and b.server_version_num]
    if not versions or not store.wal_dir.is_dir():
        return None
    major = binaries.major_of(versions[-1])
    try:
        tool = binaries.pg_bin(major, "pg_waldump")
    except OpsCoreError:
        return None
    return walcheck.check_archive(store.wal_dir, _seg_size(backups), tool, major)


def _stream(wal_dir: Path) -> dict[str, Any]:
    from ..backup.walstream import stream_alive

    state = wal.read_stream_state(wal_dir)
    return {**state, "alive": stream_alive(state)} if state else {}


def _report_one(conn: Any, t: Any) -> BackupReport:
    backups = catalog.list_backups(conn, t.target_id)
    store = _store(conn, t)
    archive = wal.scan(store.wal_dir, _seg_size(backups))
    state = wal.read_state(store.wal_dir)
    check = _archive_check(store, backups)
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
        wal={
            "gaps": [g.as_dict() for g in archive.gaps()],
            "damaged": [d.as_dict() for d in check.damaged] if check else [],
            "last_received": state,
            "stream": _stream(store.wal_dir),
        },
        recoverability=_recoverability(backups, check),
        restore_points=[p.as_dict() for p in catalog.restore_points(conn, t.target_id)],
    )


def backup_report(target: str | None = None) -> list[BackupReport]:
    """Per target: backups with chains, sizes, durations, verification, WAL gaps and the
    recoverability window (earliest and latest point one can restore to)."""
    targets = [get_target(target)] if target else list_targets()
    with repository.session() as conn:
        return [_report_one(conn, t) for t in targets]
